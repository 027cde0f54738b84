"""Generic training-loop pieces shared by train_teacher.py and distill.py.

Runtime (seeds, threads, DDP through torchrun), AdamW with no decay on 1-D parameters, warmup +
poly schedule, AMP on CUDA, resumable checkpoints (model + optimizer + scheduler + every RNG +
epoch, written atomically through anyseg_model.save_checkpoint), data loaders whose order
depends only on (seed, epoch), and a scalar logger (TensorBoard when importable, CSV always).
"""

from __future__ import annotations

import contextlib
import csv
import os
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from anyseg_model.checkpoint import read_checkpoint, save_checkpoint
from anyseg_model.encoders.mit import ModalityLayerNorm
from anyseg_model.inference import resolve_device


# ----------------------------------------------------------------------------- runtime
@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (all devices); deterministic kernels where cheap."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def setup_runtime(
    device: str = "auto", seed: int = 0, threads: int = 0, deterministic: bool = True
) -> Runtime:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK), join the process group,
    pick the device and seed everything; each rank gets seed + rank for its own streams."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if threads > 0:
        torch.set_num_threads(threads)
    dev = resolve_device(device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    seed_everything(seed + rank, deterministic)
    return Runtime(dev, rank, world, local)


def cleanup_runtime(rt: Runtime) -> None:
    """End the process group once every rank is done: a rank that tore its connections down
    while rank 0 was still writing the run's files was seen to abort ("terminate called without
    an active exception", once in a loaded `make test`)."""
    if rt.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


# ----------------------------------------------------------------------------- optimisation
_NORMS = (nn.LayerNorm, nn.BatchNorm2d, nn.GroupNorm, ModalityLayerNorm)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: decay for weight matrices/kernels, none for biases and norm affines
    (1-D parameters, plus per-modality norm tables, which are stacks of 1-D parameters)."""
    no_decay_ids = {
        id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)
    }
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or id(p) in no_decay_ids else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999)
) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=tuple(betas))


class WarmupPoly:
    """LR factor per iteration: linear warmup from ``ratio`` to 1 over ``warmup`` steps, then
    (1 - progress)^power down to 0 at ``total`` (the reference's WarmupPolyLR). A callable
    object, not a lambda, so LambdaLR saves and restores it."""

    def __init__(self, total: int, warmup: int, ratio: float = 0.1, power: float = 0.9) -> None:
        self.total, self.warmup, self.ratio, self.power = (
            int(total),
            int(warmup),
            float(ratio),
            float(power),
        )

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return self.ratio + (1.0 - self.ratio) * step / self.warmup
        span = max(1, self.total - self.warmup)
        return max(0.0, 1.0 - (step - self.warmup) / span) ** self.power


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total: int,
    warmup: int,
    ratio: float = 0.1,
    power: float = 0.9,
) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupPoly(total, warmup, ratio, power))


def amp_settings(
    device: torch.device, enabled: bool
) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """CUDA: bf16 autocast where the GPU supports it (no scaler needed), else fp16 + scaler.
    CPU: full precision (CPU autocast is slower than fp32 for these small models)."""
    if not enabled or device.type != "cuda":
        return None, None
    if torch.cuda.is_bf16_supported():
        return torch.bfloat16, None
    return torch.float16, torch.amp.GradScaler("cuda")


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    return (
        torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    )


def optimizer_step(
    total: Tensor,
    params: list[Tensor],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    grad_clip: float,
) -> float:
    """Backward, unscale, clip, step. Returns the global gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(total).backward()
        scaler.unscale_(optimizer)
    else:
        total.backward()
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return float(norm)


# ----------------------------------------------------------------------------- data order
def make_loader(
    dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    epoch: int,
    rt: Runtime,
    num_workers: int = 0,
    drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """A loader whose order depends only on (seed, epoch) (and the rank's shard under DDP)."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    if rt.distributed:
        sampler = torch.utils.data.DistributedSampler(
            dataset, rt.world_size, rt.rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        sampler.set_epoch(epoch)
        return torch.utils.data.DataLoader(
            dataset, batch_size, sampler=sampler, num_workers=num_workers, drop_last=drop_last
        )
    g = torch.Generator().manual_seed(seed * 7_919 + epoch)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size,
        shuffle=shuffle,
        generator=g,
        num_workers=num_workers,
        drop_last=drop_last,
    )


def to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    out = {}
    for k, v in batch.items():
        if isinstance(v, Tensor):
            out[k] = v.to(device, non_blocking=True)
        elif isinstance(v, Mapping):
            out[k] = {m: x.to(device, non_blocking=True) for m, x in v.items()}
        else:
            out[k] = v
    return out


# ----------------------------------------------------------------------------- RNG + resume
def rng_state() -> dict[str, Any]:
    """Every global random stream, as plain data a weights_only load accepts."""
    keys, pos, has_gauss, cached = np.random.get_state()[1:]
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "python": {
            "version": version,
            "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    p = state["python"]
    random.setstate((p["version"], tuple(int(v) for v in p["internal"].tolist()), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    path: str | Path,
    model: nn.Module,
    *,
    optimizer,
    scheduler,
    epoch: int,
    step: int,
    sampler=None,
    scaler=None,
    describe: Mapping[str, Any],
    meta: Mapping[str, Any],
) -> Path:
    """A normal, node-loadable checkpoint plus everything ``--resume`` needs in ``extra``.

    describe: save_checkpoint's classes / palette / representations / input_size.
    """
    extra = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
        "epoch": epoch,
        "step": step,
    }
    if sampler is not None:
        extra["sampler"] = sampler.state_dict()
    if scaler is not None:
        extra["scaler"] = scaler.state_dict()
    return save_checkpoint(
        unwrap(model), path, extra=extra, **describe, **dict(meta, epoch=epoch, step=step)
    )


def load_training_state(
    path: str | Path, model: nn.Module, *, optimizer, scheduler, sampler=None, scaler=None
) -> tuple[int, int]:
    """Restore a :func:`save_training_state` file in place; returns (epoch done, global step)."""
    data = read_checkpoint(path)
    extra = data.get("extra") or {}
    if "optimizer" not in extra:
        raise ValueError(f"{path} holds no training state (optimizer, RNG); it cannot be resumed")
    unwrap(model).load_state_dict(data["state_dict"])
    optimizer.load_state_dict(extra["optimizer"])
    scheduler.load_state_dict(extra["scheduler"])
    if sampler is not None and "sampler" in extra:
        sampler.load_state_dict(extra["sampler"])
    if scaler is not None and "scaler" in extra:
        scaler.load_state_dict(extra["scaler"])
    set_rng_state(extra["rng"])
    return int(extra["epoch"]), int(extra["step"])


# ----------------------------------------------------------------------------- logging
HEADER = ["step", "epoch", "key", "value"]


def truncate_log(path: Path, keep_until_step: int) -> int:
    """Keep only the rows of ``log.csv`` at steps <= ``keep_until_step`` (atomically); returns
    how many rows went. A run resumed from the checkpoint of step S re-logs every step after S,
    so rows past S (written before a kill, after the last checkpoint) would be duplicates."""
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    body = rows[1:] if rows and rows[0] == HEADER else rows
    keep = [r for r in body if r and r[0].isdigit() and int(r[0]) <= keep_until_step]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        csv.writer(f).writerows([HEADER, *keep])
    os.replace(tmp, path)
    return len(body) - len(keep)


class ScalarLogger:
    """Scalars to ``<out>/log.csv`` (always) and TensorBoard (when the package imports).

    ``resume_step``: the step of the checkpoint a run resumes from; rows and TensorBoard events
    after it are dropped, so every (step, key) is logged once. A fresh run (``None``) starts an
    empty log.
    """

    def __init__(
        self, out: str | Path, enabled: bool = True, resume_step: int | None = None
    ) -> None:
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        truncate_log(out / "log.csv", resume_step or 0)
        self.file = open(out / "log.csv", "a", newline="")  # noqa: SIM115 (closed in close())
        self.csv = csv.writer(self.file)
        if self.file.tell() == 0:
            self.csv.writerow(HEADER)
        try:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step: events at or after it (from before a kill) are dropped on resume
            self.tb = SummaryWriter(str(out / "tb"), purge_step=(resume_step or 0) + 1)
        except Exception:  # tensorboard missing or broken: the CSV still has everything
            self.tb = None

    def log(self, step: int, epoch: int, scalars: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        for k, v in scalars.items():
            self.csv.writerow([step, epoch, k, f"{float(v):.6g}"])
            if self.tb is not None:
                self.tb.add_scalar(k, float(v), step)
        self.file.flush()

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.tb is not None:
                self.tb.close()


def progress(iterable, total: int | None, desc: str, enabled: bool) -> Any:
    """A tqdm bar over ``iterable`` (``set_postfix`` shows the loss); redrawn rarely when
    stderr is not a terminal, so log files stay readable."""
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=not enabled,
        dynamic_ncols=tty,
        mininterval=0.5 if tty else 60.0,
        ascii=not tty,
    )


def mean_scalars(history: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for h in history for k in h}
    return {k: float(np.mean([h[k] for h in history if k in h])) for k in sorted(keys)}
