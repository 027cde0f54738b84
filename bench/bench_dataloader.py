"""Data-loader throughput for DELIVER-sized training: samples/s with N workers, to set against
the time of one training step (a loader slower than the GPU starves it).

    python bench/bench_dataloader.py                                  # fake DELIVER, 1042x1042
    python bench/bench_dataloader.py --root /data/DELIVER --workers 0 4 8 --batches 20
    python bench/bench_dataloader.py --representation raw --size 512 512

Without ``--root`` a fake DELIVER of ``--frames`` frames is written by the synthetic world at
1042x1042 (DELIVER's frame size) into ``--fake-dir`` once (PNG renderings plus raw arrays), so
the figure includes real PNG decoding. Each configuration iterates the training loader exactly
as training does (``EncodedDataset`` with the joint augmentation, crop ``--size``, batch
``--batch``, shuffled, no caching) for ``--batches`` batches after one warm-up batch and reports
samples/s. Prints a markdown table; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from training.common import build_data
from training.config import load_config
from training.engine import Runtime, make_loader


def ensure_fake(folder: Path, frames: int) -> Path:
    """A fake DELIVER at 1042x1042 with about ``frames`` training frames (written once)."""
    from anyseg_sim.deliver_writer import write_deliver

    root = folder / "DELIVER"
    if not (root / "synthetic.json").is_file():
        scenes = max(4, -(-frames * 5 // 3))  # 3 of every 5 scenes are training scenes
        write_deliver(root, frames=1, width=1042, height=1042, seed=0, scenes=scenes)
    return root


def measure(root: Path, args, workers: int) -> float:
    overrides = [
        f"data.source=deliver:{root}",
        f"data.representation={args.representation}",
        f"data.input_size=[{args.size[0]},{args.size[1]}]",
        f"data.num_workers={workers}",
        "data.allow_partial=true",
        "data.cache=false",
    ]
    cfg = load_config(None, overrides)
    rt = Runtime(torch.device("cpu"))
    data = build_data(cfg, rt)
    loader = make_loader(
        data.train,
        args.batch,
        shuffle=True,
        seed=0,
        epoch=0,
        rt=rt,
        num_workers=workers,
        drop_last=True,
    )
    need = args.batches + 1
    if len(loader) < need:
        raise SystemExit(
            f"{len(data.train)} training frames give {len(loader)} batches of {args.batch}; "
            f"need {need} (more --frames or fewer --batches)"
        )
    it = iter(loader)
    next(it)  # warm-up: worker start, first files
    t0 = time.perf_counter()
    for _ in range(args.batches):
        next(it)
    return args.batches * args.batch / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--root", help="a DELIVER folder (default: a fake one, see --fake-dir)")
    p.add_argument("--fake-dir", default="runs/bench_dataloader")
    p.add_argument("--frames", type=int, default=24, help="training frames of the fake")
    p.add_argument("--representation", default="png", choices=["png", "raw"])
    p.add_argument("--size", type=int, nargs=2, default=[1024, 1024], metavar=("H", "W"))
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = Path(args.root) if args.root else ensure_fake(Path(args.fake_dir), args.frames)
    rows = {w: measure(root, args, w) for w in args.workers}
    print(
        f"DELIVER loader at {root}: {args.representation} inputs, crop {args.size[0]}x"
        f"{args.size[1]}, batch {args.batch}, augmentation on, {args.batches} batches timed"
    )
    print("| workers | samples/s |\n|---:|---:|")
    for w, v in rows.items():
        print(f"| {w} | {v:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "samples_per_s": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
