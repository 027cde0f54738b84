"""The generic epoch loop both scripts run: a step function returns a dict of losses, the loop
does the rest (optimiser, schedule, clipping, AMP, logging, validation, checkpoints, resume).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from anyseg_model.checkpoint import remove_stale_temps, save_checkpoint
from anyseg_model.model import AnySegModel

from .common import DataBundle, subset_list, write_scores
from .config import Config
from .engine import (
    Runtime,
    ScalarLogger,
    amp_settings,
    autocast,
    build_optimizer,
    build_scheduler,
    load_training_state,
    make_loader,
    mean_scalars,
    optimizer_step,
    progress,
    save_training_state,
    to_device,
)
from .subset_eval import ShardSampler, evaluate_subsets

StepFn = Callable[[dict[str, Any]], dict[str, Tensor]]


@dataclass
class FitResult:
    steps: int
    epochs: int
    seconds: float
    images_per_s: float
    finished: bool = True  # False when run.stop_after_epochs paused it before the last epoch
    history: list[dict[str, float]] = field(default_factory=list)


def fit(
    cfg: Config,
    rt: Runtime,
    model: AnySegModel,
    trainable: nn.Module,
    step_fn: StepFn,
    data: DataBundle,
    out: Path,
    *,
    meta: dict[str, Any],
    sampler: Any = None,
    resume: bool = False,
    desc: str = "train",
) -> FitResult:
    """Train ``model`` (the parameters of ``trainable``, maybe a DDP wrapper) for cfg.optim.

    step_fn(batch) -> {"loss": total, other terms...}, called under autocast. Writes
    ``<out>/checkpoint.pt`` (resumable) every ``run.save_every`` epochs and at the end.
    """
    o = cfg.optim
    amp_dtype, scaler = amp_settings(rt.device, cfg.run.amp)
    optimizer = build_optimizer(model, o.lr, o.weight_decay, o.betas)
    n_batches = len(data.train) // (o.batch_size * rt.world_size)
    if n_batches == 0:
        raise SystemExit(
            f"{len(data.train)} training samples make no full batch of {o.batch_size} "
            f"x {rt.world_size} rank(s); lower optim.batch_size or add data"
        )
    total = o.epochs * n_batches
    if o.max_steps:
        total = min(total, o.max_steps)
    scheduler = build_scheduler(
        optimizer, total, int(o.warmup_epochs * n_batches), o.warmup_ratio, o.power
    )
    params = [p for p in trainable.parameters() if p.requires_grad]
    ckpt = out / "checkpoint.pt"
    if rt.is_main:  # temp files of saves that were killed (SIGKILL, power loss) go
        for name in (ckpt.name, "teacher.pt", "student.pt"):
            remove_stale_temps(out / name)
    start_epoch, step = 0, 0
    if resume and ckpt.is_file():
        start_epoch, step = load_training_state(
            ckpt, model, optimizer=optimizer, scheduler=scheduler, sampler=sampler, scaler=scaler
        )
        if rt.is_main:
            print(f"resumed from {ckpt}: {start_epoch} epochs, {step} steps done")
    elif resume and rt.is_main:
        print(f"--resume: no {ckpt} yet, starting fresh")
    logger = ScalarLogger(out, enabled=rt.is_main, resume_step=step)
    history: list[dict[str, float]] = []
    t_start, images = time.perf_counter(), 0
    epoch, finished = start_epoch, True
    for epoch in range(start_epoch, o.epochs):
        if o.max_steps and step >= o.max_steps:
            break
        trainable.train()
        loader = make_loader(
            data.train,
            o.batch_size,
            shuffle=True,
            seed=cfg.run.seed,
            epoch=epoch,
            rt=rt,
            num_workers=cfg.data.num_workers,
            drop_last=True,
        )
        epoch_terms: list[dict[str, float]] = []
        t0 = time.perf_counter()
        bar = progress(loader, len(loader), f"{desc} {epoch + 1}/{o.epochs}", rt.is_main)
        for batch in bar:
            batch = to_device(batch, rt.device)
            with autocast(rt.device, amp_dtype):
                losses = step_fn(batch)
            gnorm = optimizer_step(losses["loss"], params, optimizer, scaler, o.grad_clip)
            scheduler.step()
            step += 1
            images += batch["label"].shape[0] * rt.world_size
            terms = {k: float(v.detach()) for k, v in losses.items()}
            epoch_terms.append(terms)
            if step % max(1, cfg.run.log_every) == 0:
                logger.log(
                    step,
                    epoch,
                    {
                        **{f"train/{k}": v for k, v in terms.items()},
                        "train/lr": scheduler.get_last_lr()[0],
                        "train/grad_norm": gnorm,
                    },
                )
            bar.set_postfix(loss=f"{terms['loss']:.3f}", refresh=False)
            if o.max_steps and step >= o.max_steps:
                break
        summary = mean_scalars(epoch_terms)
        summary["epoch_seconds"] = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, **summary})
        logger.log(step, epoch, {f"epoch/{k}": v for k, v in summary.items()})
        if rt.is_main:
            terms = " ".join(f"{k}={v:.4f}" for k, v in summary.items() if k != "epoch_seconds")
            print(
                f"epoch {epoch + 1}/{o.epochs} step {step}: {terms} "
                f"({summary['epoch_seconds']:.0f}s)",
                flush=True,
            )
        last = epoch + 1 == o.epochs or bool(o.max_steps and step >= o.max_steps)
        pause = bool(
            cfg.run.stop_after_epochs and epoch + 1 - start_epoch >= cfg.run.stop_after_epochs
        )
        if cfg.run.eval_every and (epoch + 1) % cfg.run.eval_every == 0 and not last:
            scores = validate(cfg, rt, model, data, amp_dtype)  # every rank scores its shard
            d = scores.to_dict()
            logger.log(step, epoch, {"val/mean_miou": d["mean_miou"] or 0.0})
            logger.log(step, epoch, {"val/mean_miou_nan0": d["mean_miou_nan0"] or 0.0})
        if rt.is_main and ((epoch + 1) % max(1, cfg.run.save_every) == 0 or last or pause):
            save_training_state(
                ckpt,
                model,
                optimizer=optimizer,
                scheduler=scheduler,
                epoch=epoch + 1,
                step=step,
                sampler=sampler,
                scaler=scaler,
                describe=data.describe(),
                meta=meta,
            )
        if pause and not last:
            if rt.is_main:
                print(
                    f"stopping after {cfg.run.stop_after_epochs} epoch(s) as asked; "
                    "continue with --resume"
                )
            finished = False
            break
    logger.close()
    seconds = time.perf_counter() - t_start
    return FitResult(step, epoch + 1, seconds, images / max(seconds, 1e-9), finished, history)


def val_loader(cfg: Config, rt: Runtime, dataset) -> torch.utils.data.DataLoader:
    """The validation loader of this rank: its own shard under DDP (every sample once)."""
    sampler = ShardSampler(len(dataset), rt.rank, rt.world_size) if rt.distributed else None
    return torch.utils.data.DataLoader(
        dataset, cfg.optim.batch_size, sampler=sampler, num_workers=cfg.data.num_workers
    )


def label_size(cfg: Config) -> tuple[int, int] | None:
    """The labels' scoring size: native (None) or, for the paper protocol, the input size."""
    return tuple(cfg.data.input_size) if cfg.run.eval_protocol == "paper" else None


def validate(
    cfg: Config,
    rt: Runtime,
    model: AnySegModel,
    data: DataBundle,
    amp_dtype=None,
    subsets: str | None = None,
):
    """Per-subset scores on the validation split. Under DDP every rank scores its shard and the
    confusion matrices are summed (no rank idles into a collective timeout meanwhile)."""
    which = subset_list(subsets or cfg.run.eval_subsets, model.modalities)
    return evaluate_subsets(
        model,
        val_loader(cfg, rt, data.val),
        data.classes,
        rt.device,
        subsets=which,
        amp_dtype=amp_dtype,
        show=rt.is_main,
        desc="val",
        label_size=label_size(cfg),
        distributed=rt.distributed,
    )


def protocol_info(cfg: Config, summary: dict) -> dict:
    """eval.json keys naming the scoring protocol and its headline figure."""
    key = "mean_miou_nan0" if cfg.run.eval_protocol == "paper" else "mean_miou"
    return {
        "protocol": cfg.run.eval_protocol,
        "label_size": list(label_size(cfg)) if label_size(cfg) else "native",
        "headline": key,
        "headline_value": summary[key],
    }


def finish_run(
    cfg: Config,
    rt: Runtime,
    model: AnySegModel,
    data: DataBundle,
    out: Path,
    meta: dict[str, Any],
    result: FitResult,
    role: str,
) -> dict:
    """After training (every rank): score every modality subset on the validation split; the
    main process writes eval.json and the final checkpoint ``<out>/<role>.pt`` (no optimizer
    state) and prints the table. Returns the summary (empty on other ranks)."""
    scores = validate(cfg, rt, model, data, amp_settings(rt.device, cfg.run.amp)[0], subsets="all")
    if not rt.is_main:
        return {}
    extra = {
        "role": role,
        "train_seconds": round(result.seconds, 1),
        "train_images_per_s": round(result.images_per_s, 2),
    }
    extra.update(protocol_info(cfg, scores.to_dict()))
    summary = write_scores(scores, out, extra=extra)
    path = out / f"{role}.pt"
    save_checkpoint(
        model,
        path,
        **data.describe(),
        **dict(meta, steps=result.steps, epochs=result.epochs, val_mean_miou=summary["mean_miou"]),
    )
    print(scores.table())
    print(
        f"{role}: {path}  mean mIoU over subsets {summary['mean_miou']} "
        f"(headline {summary['headline']} = {summary['headline_value']})"
    )
    return summary
