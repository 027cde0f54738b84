"""Generate synthetic multi-sensor driving data: a DELIVER-layout data set or rosbag2 recordings.

    anyseg-synthesize --out data/synth --format deliver --frames 20 --seed 0
    anyseg-synthesize --out data/bags --format bag --frames 200 --conditions sun,rain
    anyseg-synthesize --out data/robot --format bag --frames 200 --robot

deliver: ``--scenes`` maps, each drive ``--frames`` long, rendered under every condition and
every failure x condition; scene k goes to train/train/train/val/test by k mod 5.
bag: one bag per condition (and per failure x condition) of ``--frames`` camera frames at 20 Hz,
named ``<condition>[_<failure>]``, plus ``calibration.yaml`` in ``--out``; ``--robot`` records as
real drivers publish (jpeg, compressedDepth, evt3 event packets, an Ouster-like cloud, per-camera
camera_info, /tf_static) and writes no calibration file: everything is in the bag. See
anyseg_sim/README.md for what every sensor carries. ``python -m anyseg_sim`` is the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import CONDITIONS, FAILURES, WorldConfig, parse_list


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--size must look like 320x240, got {text!r}") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"--size must be at least 8x8, got {text!r}")
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", required=True, type=Path, help="output folder (created)")
    ap.add_argument("--format", required=True, choices=("deliver", "bag"))
    ap.add_argument(
        "--frames",
        required=True,
        type=int,
        help="frames per scene drive (deliver) / camera frames per bag",
    )
    ap.add_argument(
        "--size", default="320x240", type=parse_size, help="camera WIDTHxHEIGHT (default 320x240)"
    )
    ap.add_argument("--seed", default=0, type=int)
    ap.add_argument(
        "--conditions",
        default=None,
        help=f"comma list of {','.join(CONDITIONS)}, or all "
        "(default: all for deliver, sun for bag)",
    )
    ap.add_argument(
        "--failures", default="none", help=f"comma list of {','.join(FAILURES)}, all or none"
    )
    ap.add_argument("--scenes", default=5, type=int, help="deliver: number of maps (default 5)")
    ap.add_argument(
        "--scene", default=0, type=int, help="bag: which map to drive through (default 0)"
    )
    ap.add_argument(
        "--storage", default="mcap", choices=("mcap", "sqlite3"), help="bag storage plugin"
    )
    ap.add_argument(
        "--depth-encoding", default="16UC1", choices=("16UC1", "32FC1"), help="bag depth format"
    )
    ap.add_argument(
        "--robot",
        action="store_true",
        help="bag: record as a robot's drivers do (compressed images, event packets, tf)",
    )
    args = ap.parse_args(argv)
    try:
        default = "all" if args.format == "deliver" else "sun"
        conditions = parse_list(args.conditions or default, CONDITIONS, "conditions")
        failures = parse_list(args.failures, FAILURES, "failures")
        if not conditions:
            raise ValueError("--conditions must name at least one condition")
        if args.frames < 1 or args.scenes < 1:
            raise ValueError("--frames and --scenes must be at least 1")
    except ValueError as e:
        ap.error(str(e))
    # Rendering and writing import numpy, rosbags and tqdm: only once the arguments are good.
    from tqdm import tqdm

    from .bag_writer import write_bag
    from .deliver_writer import scene_seed, write_deliver
    from .files import write_calibration
    from .world import SyntheticWorld

    width, height = args.size
    cases = [(c, None) for c in conditions] + [(c, f) for f in failures for c in conditions]

    if args.format == "deliver":
        total = args.scenes * args.frames * len(cases)
        with tqdm(total=total, unit="frame", desc="deliver") as bar:
            write_deliver(
                args.out,
                frames=args.frames,
                width=width,
                height=height,
                seed=args.seed,
                conditions=conditions,
                failures=failures,
                scenes=args.scenes,
                on_frame=lambda: bar.update(1),
            )
        print(f"wrote {total} frames to {args.out}")
        return 0

    world_seed = scene_seed(args.seed, args.scene)
    args.out.mkdir(parents=True, exist_ok=True)
    for condition, failure in cases:
        name = f"{condition}_{failure}" if failure else condition
        path = args.out / name
        if path.exists():
            ap.error(f"{path} exists; rosbag2 writers need a new folder")
        world = SyntheticWorld(WorldConfig(width=width, height=height, seed=world_seed))
        with tqdm(total=args.frames, unit="frame", desc=name) as bar:
            counts = write_bag(
                path,
                world,
                frames=args.frames,
                condition=condition,
                failure=failure,
                storage=args.storage,
                depth_encoding=args.depth_encoding,
                on_message=lambda s: bar.update(s == "rgb"),
                robot=args.robot,
            )
        print(f"{path}: " + ", ".join(f"{t} {n}" for t, n in sorted(counts.items())))
    if not args.robot:
        write_calibration(
            args.out / "calibration.yaml",
            SyntheticWorld(WorldConfig(width=width, height=height, seed=world_seed)),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
