"""Training throughput on CPU (images/s): PML teacher step, student step (folded batch, one
presence mask per sample), and the same student step as a per-sample loop over the batch (the
reference's way of giving samples different subsets: one forward per sample).

    python bench/bench_training.py                          # anyseg_tiny, 96x128, batch 8, 1 thread
    python bench/bench_training.py --model anyseg_b0 --size 256 256 --threads 2

Inputs are random tensors of the right shapes (data loading is not timed); the subsets of the
student steps are drawn with the training sampler (P(S) = 1/(M C(M,|S|))), identical for the
folded and the looped variant. Prints a markdown table and writes --json if given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from anyseg_model import MODALITIES, create_model
from training.config import LossConfig
from training.dropout import SubsetSampler
from training.engine import build_optimizer
from training.tasks import StudentTask, TeacherTask, teacher_outputs


def timed(fn, warmup: int, iters: int) -> float:
    """Median seconds per call after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="anyseg_tiny")
    p.add_argument("--size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--classes", type=int, default=25)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--iters", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    b, (h, w), k = args.batch, args.size, args.classes
    inputs = {m: torch.randn(b, 3, h, w) for m in MODALITIES}
    label = torch.randint(0, k, (b, h, w))
    all_present = torch.ones(b, len(MODALITIES), dtype=torch.bool)
    loss_cfg = LossConfig()  # the defaults: MAD + UMD + CMD on

    # Teacher step: all modalities, OHEM-CE, AdamW.
    teacher = create_model(args.model, k)
    t_task = TeacherTask(teacher, loss_cfg)
    t_opt = build_optimizer(teacher, 1e-4, 0.01)

    def teacher_step() -> None:
        loss = t_task(inputs, all_present, label)["loss"]
        t_opt.zero_grad()
        loss.backward()
        t_opt.step()

    rows = {"teacher step (all 4 modalities)": b / timed(teacher_step, args.warmup, args.iters)}

    # Student steps against the frozen teacher.
    teacher.eval().requires_grad_(False)
    student = create_model(args.model, k)
    s_task = StudentTask(student, loss_cfg)
    s_opt = build_optimizer(student, 1e-4, 0.01)
    masks = [SubsetSampler(MODALITIES, seed=i).sample(b) for i in range(args.warmup + args.iters)]
    it = {"folded": 0, "loop": 0}

    def folded_step() -> None:
        present = masks[it["folded"] % len(masks)]
        it["folded"] += 1
        tf, tl = teacher_outputs(teacher, inputs, all_present)
        loss = s_task(inputs, present, label, tf, tl)["loss"]
        s_opt.zero_grad()
        loss.backward()
        s_opt.step()

    def loop_step() -> None:
        present = masks[it["loop"] % len(masks)]
        it["loop"] += 1
        s_opt.zero_grad()
        for n in range(b):  # one sample at a time, with only its own modalities
            mods = [m for m, on in zip(MODALITIES, present[n].tolist(), strict=True) if on]
            x = {m: inputs[m][n : n + 1] for m in MODALITIES}
            tf, tl = teacher_outputs(teacher, x, all_present[n : n + 1])
            one = {m: x[m] for m in mods}
            sub = StudentTask(student, loss_cfg)
            # The student sees only its modalities; the teacher features are looked up by name.
            loss = (
                sub(one, torch.ones(1, len(mods), dtype=torch.bool), label[n : n + 1], tf, tl)[
                    "loss"
                ]
                / b
            )
            loss.backward()
        s_opt.step()

    student.train()
    rows["student step, folded batch + per-sample masks"] = b / timed(
        folded_step, args.warmup, args.iters
    )
    rows["student step, per-sample loop"] = b / timed(loop_step, args.warmup, args.iters)
    ratio = (
        rows["student step, folded batch + per-sample masks"]
        / rows["student step, per-sample loop"]
    )
    print(
        f"{args.model}, {h}x{w}, batch {b}, {k} classes, {args.threads} thread(s), CPU, "
        f"torch {torch.__version__}"
    )
    print("| step | images/s |\n|---|---:|")
    for name, v in rows.items():
        print(f"| {name} | {v:.1f} |")
    print(f"| folded / loop speed-up | {ratio:.2f}x |")
    if args.json:
        Path(args.json).write_text(
            json.dumps({"args": vars(args), "images_per_s": rows, "speedup": ratio}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
