"""Synthetic world generation speed on ONE core (pinned), printed as BENCHMARKS.md table rows.

    python bench/bench_synthetic.py [--size 320x240] [--frames 40] [--rounds 3]

Measured: (1) ``world.frame(i)``, every sensor of one frame from scratch (RGB + labels, depth,
events, which need a second render 1/30 s earlier, and a 32x1024 LiDAR sweep), frames 0.5 s
apart so no render is shared; (2) the same plus writing the DELIVER files (PNGs + raw .npz);
(3) a rosbag2 drive (mcap), reported per camera frame (each second of bag renders 20 RGB,
15 depth, 30 event and 10 LiDAR samples). Each figure is the median of ``--rounds`` rounds, as
wall-clock and as CPU-time rate (the latter is what to compare on a busy machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

# One core: pin BLAS/OpenMP pools before numpy loads, and the process to one CPU below.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from anyseg_sim import SyntheticWorld, WorldConfig  # noqa: E402 (after the thread pins)
from anyseg_sim.bag_writer import write_bag  # noqa: E402
from anyseg_sim.deliver_writer import write_frame  # noqa: E402


def rate(fn, count: int, rounds: int) -> tuple[float, float]:
    """(wall-clock, CPU-time) items per second of ``fn`` doing ``count`` items: medians over
    ``rounds`` runs. CPU time counts only this process, so it stays meaningful when other
    processes share the core; on an idle machine the two agree."""
    wall, cpu = [], []
    for r in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        fn(r)
        wall.append(count / (time.perf_counter() - w0))
        cpu.append(count / (time.process_time() - c0))
    return statistics.median(wall), statistics.median(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    def cfg(r: int) -> WorldConfig:  # a different map every round
        return WorldConfig(width=width, height=height, seed=100 + r)

    SyntheticWorld(cfg(99)).frame(0)  # warm up imports and first-use costs

    def frames(r: int) -> None:
        world = SyntheticWorld(cfg(r))
        for i in range(args.frames):
            world.frame(i, ("sun", "night", "fog", "rain", "cloud")[i % 5])

    def deliver(r: int) -> None:
        world = SyntheticWorld(cfg(r))
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.frames):
                write_frame(Path(tmp), world.frame(i), "train", "bench", i)

    def bag(r: int) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            write_bag(Path(tmp) / "bag", SyntheticWorld(cfg(r)), frames=args.frames)

    cmd = (
        f"python bench/bench_synthetic.py --size {args.size} --frames {args.frames} "
        f"--rounds {args.rounds}"
    )
    where = f"{platform.processor() or platform.machine()}, 1 core pinned, numpy"
    print(f"| benchmark ({args.size}, {where}) | wall clock | per CPU second | command |")
    print("|---|---|---|---|")
    for name, fn in (
        ("synthetic world: all sensors per frame (world.frame)", frames),
        ("synthetic world + DELIVER files (6 PNG + raw npz)", deliver),
        ("synthetic world -> rosbag2 mcap, per 20 Hz camera frame", bag),
    ):
        wall, cpu = rate(fn, args.frames, args.rounds)
        print(f"| {name} | {wall:.1f} frames/s | {cpu:.1f} frames/s | `{cmd}` |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
