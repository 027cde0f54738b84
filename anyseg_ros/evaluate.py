"""Score a checkpoint on a recorded bag, per modality subset actually used.

    anyseg-evaluate BAG --checkpoint CKPT [--drop lidar:5-10 ...] [--mode offline|live] --out DIR

offline: the node's decode + sync + model path on the bag with no DDS (deterministic).
live:    the real node as a process, the bag replayed into it over DDS, its outputs matched to
         the bag's ground-truth labels by stamp.
Both write DIR/report.json, DIR/report.md and PNG plots, and print the per-subset table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from anyseg_model import CheckpointError, Segmentor

from .bag import LABELS_TOPIC, BagError, parse_drop, read_bag
from .core.settings import PARAMETER_NAMES, Settings, SettingsError
from .evaluation import match_ground_truth, run_offline, score
from .report import build_report, outage_timeline, write_report


def find_calibration(bag: Path) -> Path | None:
    """``calibration.yaml`` inside a bag folder, or beside the bag."""
    for candidate in (bag / "calibration.yaml", bag.parent / "calibration.yaml"):
        if candidate.is_file():
            return candidate
    return None


def node_parameters(params_file: Path | None, overrides: Sequence[str]) -> dict[str, Any]:
    """Parameter values from a node params file (``anyseg_node: ros__parameters: ...``) and
    ``name=value`` overrides (values parsed as YAML)."""
    values: dict[str, Any] = {}
    if params_file:
        doc = yaml.safe_load(params_file.read_text()) or {}
        for node in doc.values():
            values.update(_flatten((node or {}).get("ros__parameters", {})))
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise SettingsError(item, item, "overrides are name=value")
        values[name.strip()] = yaml.safe_load(value)
    return values


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'lidar': {'timeout_ms': 300}}`` -> ``{'lidar.timeout_ms': 300}`` (ROS parameter names)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and name not in PARAMETER_NAMES:
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``anyseg-evaluate``."""
    ap = argparse.ArgumentParser(prog="anyseg-evaluate", description=__doc__.split("\n\n")[0])
    ap.add_argument("bag", type=Path)
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--mode", choices=("offline", "live"), default="offline")
    ap.add_argument("--drop", action="append", default=[], metavar="MODALITY:START-END")
    ap.add_argument("--labels-topic", default=LABELS_TOPIC)
    ap.add_argument(
        "--calibration", type=Path, help="default: calibration.yaml in or beside the bag"
    )
    ap.add_argument(
        "--params-file", type=Path, help="node parameters YAML (e.g. config/segment.yaml)"
    )
    ap.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="node parameter override"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--rate", type=float, default=1.0, help="live mode: replay speed")
    ap.add_argument("--match-tolerance-ms", type=float, default=30.0,
                    help="pair a frame with ground truth at most this far apart in stamp")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        drops = [parse_drop(d) for d in args.drop]
        bag = read_bag(args.bag)
        segmentor = Segmentor.from_checkpoint(args.checkpoint, args.device)
        values = node_parameters(args.params_file, args.param)
        values.update(checkpoint=str(args.checkpoint), device=args.device)
        values.setdefault("modalities", list(segmentor.modalities))
        calibration = args.calibration or find_calibration(args.bag)
        if calibration and "lidar_extrinsic" not in values:
            values.setdefault("calibration_file", str(calibration))
        settings = Settings.from_parameters(
            values, read_yaml=lambda p: yaml.safe_load(Path(p).read_text())
        )
    except (BagError, CheckpointError, SettingsError, ValueError, OSError) as e:
        print(f"anyseg-evaluate: {e}", file=sys.stderr)
        return 2
    if bag.error:
        print(
            f"anyseg-evaluate: warning: {bag.error}; evaluating the readable part", file=sys.stderr
        )

    print(
        f"anyseg-evaluate: {args.mode} run of {args.bag} ({len(bag.records)} messages)", flush=True
    )
    if args.mode == "offline":
        run = run_offline(bag, segmentor.predict, settings, drops, args.labels_topic)
        frames, ground_truth, dropped = run.frames, run.ground_truth, 0
        outages = outage_timeline(
            run.health_events, (bag.records[-1].log_ns - run.start_ns) * 1e-9 if bag.records else 0
        )
        extra = {"decode_errors": run.decode_errors, "sync_drops": run.sync_drops}
    else:
        from .live import run_live

        live = run_live(bag, settings, drops, args.rate, args.labels_topic, values, segmentor.classes,
                        int(args.match_tolerance_ms * 1e6))  # fmt: skip
        frames, ground_truth, dropped, outages = (
            live.frames,
            live.ground_truth,
            live.dropped,
            live.outages,
        )
        extra = {"node_exit_code": live.exit_code, "node_log_tail": live.log_tail}
    pairs = match_ground_truth(frames, ground_truth, int(args.match_tolerance_ms * 1e6))
    scores, per_frame = score(pairs, segmentor.classes)
    meta = {"bag": str(args.bag), "mode": args.mode, "checkpoint": str(args.checkpoint),
            "drops": args.drop, "bag_error": bag.error, **extra}  # fmt: skip
    report = build_report(frames, scores.to_dict(), per_frame, meta, outages, dropped)
    written = write_report(args.out, report, frames, per_frame, segmentor.palette)
    print(scores.table())
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
