"""`make demo`: a generated multi-sensor recording played through the real node, with LiDAR and
then RGB dropped and restored, scored live per modality subset.

    python scripts/demo.py [--out runs/demo] [--checkpoint checkpoints/anyseg_tiny_synthetic.pt]
                           [--param lidar.max_age_ms=0 ...]

1. Generates a drive per condition in the synthetic world (rosbag2, real sensor messages at their
   own rates) and joins them into one recording (cached in OUT/recording).
2. Starts anyseg_node as a process (loopback-only DDS, a ROS domain of its own) with the shipped
   student checkpoint, replays the recording into it with the drop schedule, and prints a line per
   second: sensor states, anchor, frames, latency, running mIoU.
3. Writes OUT/report.{json,md}, frames.csv and plots, and prints the per-subset table.
Exits non-zero if the node failed. Every child process is killed by its pid on the way out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from anyseg_model import CheckpointError
from anyseg_ros.core.settings import SettingsError
from anyseg_tools.bag import BagError, concat_bags
from anyseg_tools.evaluate import evaluate
from anyseg_tools.localdds import loopback_env
from anyseg_tools.params import parameter_values

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_CHECKPOINT = ROOT / "checkpoints" / "anyseg_tiny_synthetic.pt"

# The synthetic sensors are not synchronised (camera 20 Hz, depth 15 Hz, events 30 Hz, LiDAR
# 10 Hz): a 35 ms window lets depth join three camera frames in four and events every one.
NODE_PARAMETERS = {"slop_ms": 35.0, "wait_ms": 50.0, "timeout_ms": 400.0, "lidar.timeout_ms": 300.0}


def make_recording(
    out: Path, conditions: list[str], frames: int, size: tuple[int, int], seed: int
) -> Path:
    """One drive per condition (a different map each), joined into OUT/recording; cached."""
    from tqdm import tqdm

    from anyseg_sim import SyntheticWorld, WorldConfig, write_bag
    from anyseg_sim.files import write_calibration

    spec = {"conditions": conditions, "frames": frames, "size": list(size), "seed": seed}
    recording, stamp = out / "recording", out / "recording.json"
    if recording.exists() and stamp.exists() and json.loads(stamp.read_text()) == spec:
        print(f"recording: reusing {recording}")
        return recording
    shutil.rmtree(out / "parts", ignore_errors=True)
    shutil.rmtree(recording, ignore_errors=True)
    parts = []
    for k, condition in enumerate(conditions):
        world = SyntheticWorld(WorldConfig(width=size[0], height=size[1], seed=seed + k))
        bar = tqdm(total=frames, desc=f"recording {condition}", unit="frame")
        write_bag(
            out / "parts" / condition,
            world,
            frames=frames,
            condition=condition,
            on_message=lambda sensor, bar=bar: bar.update(sensor == "rgb"),
        )
        bar.close()
        parts.append(out / "parts" / condition)
        write_calibration(out / "calibration.yaml", world)  # the same rig for every map
    concat_bags(parts, recording)
    shutil.rmtree(out / "parts")
    stamp.write_text(json.dumps(spec))
    return recording


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "demo")
    ap.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    ap.add_argument("--conditions", default="sun,night,fog")
    ap.add_argument("--frames", type=int, default=100, help="camera frames per condition (20 Hz)")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="node parameter over the demo's own (e.g. lidar.max_age_ms=0)",
    )
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.lower().split("x"))
    conditions = args.conditions.split(",")
    os.environ.update(loopback_env())  # this process and the node: loopback-only DDS

    recording = make_recording(args.out, conditions, args.frames, size, args.seed)
    duration = len(conditions) * args.frames / 20.0
    # LiDAR out over the second fifth of the drive, RGB over the fourth; both come back.
    drops = [
        f"lidar:{0.2 * duration:.1f}-{0.4 * duration:.1f}",
        f"rgb:{0.6 * duration:.1f}-{0.8 * duration:.1f}",
    ]
    print(
        f"recording: {recording} ({duration:.0f} s: {', '.join(conditions)}; {size[0]}x{size[1]})"
    )
    print(f"checkpoint: {args.checkpoint}")
    print(
        f"drops: {', '.join(drops)}  (ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, loopback only)\n"
    )

    try:
        values = {**NODE_PARAMETERS, **parameter_values(None, args.param)}
        print(f"node parameters: {values}")
        result = evaluate(
            recording,
            args.checkpoint,
            args.out,
            mode="live",
            drops=drops,
            values=values,
            calibration=args.out / "calibration.yaml",
            device=args.device,
        )
    except (CheckpointError, SettingsError, BagError, ValueError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    if result.node_failed or not result.report:
        print("\ndemo: the node failed (see above)", file=sys.stderr)
        return 1
    r = result.report
    print(
        f"\nper modality subset actually used (live, {r['frames']} frames, "
        f"{r['frames_dropped']} dropped):"
    )
    print(result.table)
    lat = r["latency_ms"]
    print(f"latency stamp -> labels: p50 {lat['p50']} ms, p95 {lat['p95']} ms, max {lat['max']} ms")
    print(f"mIoU over all frames: {r['miou_all_frames']}")
    share = r["modality_share"]
    print("frames with each sensor: " + ", ".join(f"{m} {100 * v:.0f}%" for m, v in share.items()))
    for m, spans in r["outages"].items():
        print(f"{m} out: " + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans))
    print("\nreport:")
    for path in result.written:
        print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
