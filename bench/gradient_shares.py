"""How much each loss term pulls on the student, and how the gradient norm behaves early on.

    # per-term gradient norms of the configured student loss (weights included), at the start
    # and after --steps training steps, on real training batches:
    python bench/gradient_shares.py shares --config training/configs/synthetic.yaml \\
        --teacher runs/study/teacher/teacher.pt student.init=scratch
    # the global gradient norm of the first N steps of a from-scratch teacher, clipping off:
    python bench/gradient_shares.py trajectory --config training/configs/synthetic.yaml --steps 100

``shares`` draws the student's subsets with the training sampler, computes every term of
``training.tasks.StudentTask`` in one forward pass and the gradient of each WEIGHTED term
(weight x term) with respect to the student's parameters separately; it prints the median
global norm per term over ``--batches`` batches and its ratio to L_sup's, plus each term's share
of the loss value. The reference forms of UMD and CMD (``loss.umd_form=reference``,
``loss.cmd_form=reference``) are measured beside the configured ones at their reference weights
(5 and 10), so the weights in the configs can be set by gradient share and the comparison is on
record. ``--steps N`` first trains the student N steps with the configured recipe (clipping as
configured) and measures again, because shares move as the student approaches the teacher.

``trajectory`` trains the PML teacher from scratch with ``optim.grad_clip=0`` and prints the
global gradient norm at steps 1, 2, 5, 10, 20, 50 and N, and step 1 / step N (issue: empty
tokens, e.g. no events or no LiDAR return in a patch, hit the first patch-embedding LayerNorm);
``--zero-first-bias`` starts from the old initialisation (that bias at 0) for comparison.

Extra ``key=value`` arguments are config overrides (the data comes from the config; use a small
``data.train_frames`` for a quick look). ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
from pathlib import Path

import torch

from anyseg_model import load_checkpoint
from training.common import build_data, build_model
from training.config import load_config
from training.dropout import SubsetSampler
from training.engine import (
    Runtime,
    build_optimizer,
    build_scheduler,
    make_loader,
    optimizer_step,
)
from training.tasks import StudentTask, TeacherTask, expand_state_for, teacher_outputs

CPU = Runtime(torch.device("cpu"))
# (name, loss-config changes, label): the configured terms plus the reference forms.
VARIANTS = [
    ("umd_reference", {"umd_form": "reference", "umd": 5.0}, "UMD, reference form, weight 5"),
    ("cmd_reference", {"cmd_form": "reference", "cmd": 10.0}, "CMD, reference form, weight 10"),
    ("cmd_pairs", {"cmd_form": "pairs", "cmd": 10.0}, "CMD, pairs form, weight 10"),
]


def _norm(grads) -> float:
    return float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None)))


def term_norms(task: StudentTask, batch, present, t_feats, t_logits, params) -> dict[str, float]:
    """Global gradient norm of each weighted term; also the weighted values."""
    out = task(batch["inputs"], present, batch["label"], t_feats, t_logits)
    c = task.cfg
    weights = {"sup": 1.0, "mad": c.mad, "umd": c.umd, "cmd": c.cmd, "ummkd": c.ummkd}
    res = {}
    terms = [k for k in weights if k in out]
    for i, k in enumerate(terms):
        g = torch.autograd.grad(
            weights[k] * out[k], params, retain_graph=i < len(terms) - 1, allow_unused=True
        )
        res[f"grad/{k}"] = _norm(g)
        res[f"value/{k}"] = float(weights[k] * out[k].detach())
    return res


def shares(args, cfg) -> dict:
    rt = CPU
    data = build_data(cfg, rt)
    ck = load_checkpoint(args.teacher)
    teacher = ck.model.eval().requires_grad_(False)
    model = build_model(cfg, data)
    if cfg.student.init == "teacher":
        model.load_state_dict(expand_state_for(model, teacher.state_dict()), strict=False)
    model.train()
    sampler = SubsetSampler(data.modalities, seed=cfg.run.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    report = {"measure_at_step_0": _measure(args, cfg, data, model, teacher, sampler, params)}
    if args.steps:
        _train_student(cfg, data, model, teacher, sampler, args.steps)
        model.train()
        report[f"measure_at_step_{args.steps}"] = _measure(
            args, cfg, data, model, teacher, sampler, params
        )
    return report


def _measure(args, cfg, data, model, teacher, sampler, params) -> dict:
    loader = make_loader(
        data.train, cfg.optim.batch_size, shuffle=True, seed=cfg.run.seed + 99, epoch=0, rt=CPU
    )
    configured = StudentTask(model, cfg.loss)
    variants = {}
    for name, change, _ in VARIANTS:
        lc = copy.deepcopy(cfg.loss)
        for k, v in change.items():
            setattr(lc, k, v)
        lc.mad = lc.ummkd = 0.0
        variants[name] = StudentTask(model, lc)
    rows: dict[str, list[float]] = {}
    for i, batch in enumerate(loader):
        if i >= args.batches:
            break
        present = sampler.sample(batch["label"].shape[0], batch["available"])
        tf, tl = teacher_outputs(teacher, batch["inputs"], batch["available"])
        for k, v in term_norms(configured, batch, present, tf, tl, params).items():
            rows.setdefault(k, []).append(v)
        for name, task in variants.items():
            got = term_norms(task, batch, present, tf, tl, params)
            term = name.split("_")[0]
            rows.setdefault(f"grad/{name}", []).append(got[f"grad/{term}"])
            rows.setdefault(f"value/{name}", []).append(got[f"value/{term}"])
    med = {k: statistics.median(v) for k, v in rows.items()}
    sup = med["grad/sup"]
    total = sum(v for k, v in med.items() if k.startswith("value/") and "_" not in k)
    return {
        k.split("/", 1)[1]: {
            "grad_norm": round(v, 4),
            "grad_vs_sup": round(v / sup, 3),
            **(
                {"value_share": round(med["value/" + k.split("/", 1)[1]] / total, 3)}
                if "_" not in k
                else {}
            ),
        }
        for k, v in med.items()
        if k.startswith("grad/")
    }


def _train(cfg, data, model, loss_of, steps: int, grad_clip: float) -> list[float]:
    """``steps`` optimiser steps of the configured schedule over shuffled epochs;
    ``loss_of(batch)`` gives the loss. Returns the global gradient norm of every step."""
    opt = build_optimizer(model, cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.betas)
    n_batches = max(1, len(data.train) // cfg.optim.batch_size)
    sched = build_scheduler(
        opt, cfg.optim.epochs * n_batches, int(cfg.optim.warmup_epochs * n_batches)
    )
    params = [p for p in model.parameters() if p.requires_grad]
    norms: list[float] = []
    epoch = 0
    while len(norms) < steps:
        loader = make_loader(
            data.train, cfg.optim.batch_size, shuffle=True, seed=cfg.run.seed, epoch=epoch, rt=CPU
        )
        for batch in loader:
            norms.append(optimizer_step(loss_of(batch), params, opt, None, grad_clip))
            sched.step()
            if len(norms) >= steps:
                break
        epoch += 1
    return norms


def _train_student(cfg, data, model, teacher, sampler, steps: int) -> None:
    task = StudentTask(model, cfg.loss)

    def loss_of(batch):
        present = sampler.sample(batch["label"].shape[0], batch["available"])
        tf, tl = teacher_outputs(teacher, batch["inputs"], batch["available"])
        return task(batch["inputs"], present, batch["label"], tf, tl)["loss"]

    _train(cfg, data, model, loss_of, steps, cfg.optim.grad_clip)


def trajectory(args, cfg) -> dict:
    data = build_data(cfg, CPU)
    model = build_model(cfg, data).train()
    if args.zero_first_bias:  # the initialisation before the fix, for comparison
        torch.nn.init.zeros_(model.encoder.patch_embed1.proj.bias)
    task = TeacherTask(model, cfg.loss)
    norms = _train(  # clipping off: the raw norms
        cfg,
        data,
        model,
        lambda b: task(b["inputs"], b["available"], b["label"])["loss"],
        args.steps,
        0.0,
    )
    marks = sorted({s for s in (1, 2, 5, 10, 20, 50, args.steps) if s <= args.steps})
    return {
        "grad_norm_at_step": {s: round(norms[s - 1], 4) for s in marks},
        "step1_over_last": round(norms[0] / norms[-1], 3),
        "max_over_last_half_median": round(
            max(norms) / statistics.median(norms[len(norms) // 2 :]), 3
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("mode", choices=["shares", "trajectory"])
    p.add_argument("--config", default="training/configs/synthetic.yaml")
    p.add_argument("--teacher", help="teacher checkpoint (shares)")
    p.add_argument("--batches", type=int, default=8, help="batches measured (shares)")
    p.add_argument(
        "--steps",
        type=int,
        default=0,
        help="shares: train N steps, measure again; trajectory: steps recorded (default 100)",
    )
    p.add_argument(
        "--zero-first-bias",
        action="store_true",
        help="trajectory: start the first patch embedding's bias at 0 (the old initialisation)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the figures here")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_intermixed_args(argv)
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, args.overrides)
    torch.manual_seed(cfg.run.seed)
    if args.mode == "shares":
        if not args.teacher:
            p.error("shares needs --teacher CKPT")
        report = shares(args, cfg)
    else:
        args.steps = args.steps or 100
        report = trajectory(args, cfg)
    report["config"] = {"file": args.config, "overrides": args.overrides}
    report["zero_first_bias"] = bool(args.zero_first_bias)
    c = cfg.loss
    report["weights"] = {
        "sup": 1.0,
        "mad": c.mad,
        "umd": c.umd,
        "cmd": c.cmd,
        "ummkd": c.ummkd,
        **{name: change[name.split("_")[0]] for name, change, _ in VARIANTS},
    }
    report["forms"] = {"umd": c.umd_form, "cmd": c.cmd_form}
    print(json.dumps(report, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
