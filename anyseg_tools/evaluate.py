"""Score a checkpoint on a recorded bag, per modality subset actually used.

    anyseg-evaluate BAG --checkpoint CKPT [--drop lidar:5-10 ...] [--mode offline|live] --out DIR

offline: the node's decode + sync + model path on the bag with no DDS (deterministic).
live:    the real node as a process, the bag replayed into it over DDS, its outputs matched to
         the bag's ground-truth labels by stamp; --sim-time runs the node with use_sim_time on
         the replay's /clock (bag time, recorded stamps).
Both write DIR/report.json, DIR/report.md and PNG plots, and print the per-subset table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from anyseg_model import CheckpointError, Segmentor
from anyseg_model.metrics import miou
from anyseg_ros.core.settings import Settings, SettingsError
from anyseg_ros.core.topics import LABELS_TOPIC, TF_STATIC_TOPIC, TF_TOPIC, normalize
from anyseg_ros.pipeline import lidar_max_intensity

from .bag import BagError, find_calibration, parse_drop, read_bag
from .params import parameter_values
from .report import build_report, outage_timeline, schedule_spans, write_report
from .scoring import run_offline
from .walk import bag_inputs


@dataclass
class Evaluation:
    report: dict[str, Any]
    written: list[Path]
    table: str
    node_failed: bool  # live mode: the node exited non-zero or never came up


def evaluate(
    bag_path: Path,
    checkpoint: Path,
    out: Path,
    *,
    mode: str = "offline",
    drops: Sequence[str] = (),
    values: dict[str, Any] | None = None,
    calibration: Path | None = None,
    labels_topic: str = LABELS_TOPIC,
    device: str = "auto",
    rate: float = 1.0,
    tolerance_ms: float = 30.0,
    export_ply: int = 0,
    on_line: Callable[[str], None] = print,
    sim_time: bool = False,
) -> Evaluation:
    """Evaluate ``checkpoint`` on a bag in ``mode`` and write the report into ``out``.

    ``values`` are node parameters (as in config/segment.yaml); the checkpoint, device, its
    modalities and the calibration file found beside the bag fill what they leave open. Raises
    BagError, CheckpointError, SettingsError or ValueError on bad input.
    """
    windows = [parse_drop(d) for d in drops]
    bag = read_bag(bag_path)
    segmentor = Segmentor.from_checkpoint(checkpoint, device)
    values = dict(values or {})
    values.update(checkpoint=str(checkpoint), device=device)
    values.setdefault("modalities", list(segmentor.modalities))
    calibration = calibration or find_calibration(bag_path)
    if calibration and "lidar_extrinsic" not in values:
        values.setdefault("calibration_file", str(calibration))
    # Transports and event formats as the bag recorded them; tf from the bag (offline).
    values = bag_inputs(bag.topics(), values)
    has_tf = bool({normalize(TF_STATIC_TOPIC), normalize(TF_TOPIC)} & set(bag.topics()))
    settings = Settings.from_parameters(
        values,
        read_yaml=lambda p: yaml.safe_load(Path(p).read_text()),
        tf_available=has_tf and mode == "offline",
    )
    if bag.error:
        on_line(f"warning: {bag.error}; evaluating the readable part")
    on_line(f"{mode} run of {bag_path} ({len(bag.records)} messages)")

    failed = False
    tolerance_ns = int(tolerance_ms * 1e6)
    if sim_time and mode != "live":
        raise ValueError("--sim-time works in live mode (offline runs on the bag's time anyway)")
    if mode == "offline":
        run = run_offline(
            bag,
            segmentor.predict,
            settings.sync,
            settings.inputs,
            segmentor.classes,
            windows,
            labels_topic,
            tolerance_ns,
            keep_clouds=export_ply,
            model_max_intensity=lidar_max_intensity(segmentor),
        )
        frames, scorer, dropped = run.frames, run.scorer, 0
        outages = outage_timeline(run.health_events, run.duration_s)
        extra = {
            "decode_errors": run.decode_errors,
            "sync_drops": run.sync_drops,
            "inputs": run.inputs,
            "input_notes": run.input_notes,
        }
        for note in run.input_notes:
            on_line(f"inputs: {note}")
    elif mode == "live":
        from .live import NodeFailed, run_live

        if export_ply:
            raise ValueError(
                "--export-ply works in offline mode "
                "(the node's segmentation/points carries the same)"
            )
        try:
            live = run_live(
                bag,
                values,
                settings.modalities,
                windows,
                rate,
                labels_topic,
                segmentor.classes,
                tolerance_ns,
                on_line,
                sim_time=sim_time,
            )
        except NodeFailed as e:
            on_line(f"node failed: {e}")
            return Evaluation({}, [], "", node_failed=True)
        frames, scorer, dropped, outages = live.frames, live.scorer, live.dropped, live.outages
        extra = {
            "node_exit_code": live.exit_code,
            "node_frames": live.node_frames,
            "node_log_tail": live.log_tail,
        }
        failed = live.exit_code != 0
    else:
        raise ValueError(f"mode must be offline or live, got {mode!r}")
    meta = {
        "bag": str(bag_path),
        "mode": mode,
        "sim_time": sim_time,
        "checkpoint": str(checkpoint),
        "drops": list(drops),
        "schedule": schedule_spans(windows, _duration_s(bag)),
        "bag_error": bag.error,
        **extra,
    }
    conf = scorer.scores.conf
    # Over every scored frame together: comparable between runs whose subset mix differs.
    meta["miou_all_frames"] = round(100 * miou(sum(conf.values())), 2) if conf else None
    report = build_report(frames, scorer.scores.to_dict(), scorer.per_frame, meta, outages, dropped)
    written = write_report(out, report, frames, scorer.per_frame, segmentor.palette)
    return Evaluation(report, written, scorer.scores.table(), failed)


def _duration_s(bag) -> float:
    return (bag.records[-1].log_ns - bag.records[0].log_ns) * 1e-9 if bag.records else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``anyseg-evaluate``: 0 on success, 2 on bad input, 1 if the node failed."""
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
    ap.add_argument(
        "--sim-time",
        action="store_true",
        help="live mode: the node with use_sim_time, the replay publishing /clock",
    )
    ap.add_argument(
        "--export-ply",
        type=int,
        default=0,
        metavar="N",
        help="offline: write the labelled LiDAR clouds of the first N frames as DIR/clouds/*.ply",
    )
    ap.add_argument(
        "--match-tolerance-ms",
        type=float,
        default=30.0,
        help="pair a frame with ground truth at most this far apart in stamp",
    )
    args = ap.parse_args(argv)

    def say(line: str) -> None:
        print(f"anyseg-evaluate: {line}" if not line.startswith("[") else line, flush=True)

    try:
        values = parameter_values(args.params_file, args.param)
        result = evaluate(
            args.bag,
            args.checkpoint,
            args.out,
            mode=args.mode,
            drops=args.drop,
            values=values,
            calibration=args.calibration,
            labels_topic=args.labels_topic,
            device=args.device,
            rate=args.rate,
            tolerance_ms=args.match_tolerance_ms,
            export_ply=args.export_ply,
            on_line=say,
            sim_time=args.sim_time,
        )
    except (BagError, CheckpointError, SettingsError, ValueError, OSError) as e:
        print(f"anyseg-evaluate: {e}", file=sys.stderr)
        return 2
    if result.table:
        print(result.table)
    for path in result.written:
        print(f"wrote {path}")
    return 1 if result.node_failed else 0


if __name__ == "__main__":
    sys.exit(main())
