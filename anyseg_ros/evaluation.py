"""Evaluation of a recorded bag: frames the node produced (offline or live) scored per subset.

Offline mode runs the node's own path with no DDS: decode each message, push it into the
:class:`~anyseg_ros.core.sync.ModalitySynchronizer` with the bag's log time as the clock, assemble
each frame set into model inputs (the node's :class:`~anyseg_ros.pipeline.Pipeline`) and predict. It is deterministic for a given bag, schedule and
checkpoint. Live mode (``anyseg_ros.live``) produces the same :class:`FrameResult` rows from the
real node's outputs, so both are scored and reported by the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anyseg_model.metrics import SubsetScores, confusion_matrix, miou
from anyseg_model.modalities import subset_name

from .bag import LABELS_TOPIC, BagContents, DropWindow, deserialize, dropped, modality_of
from .core.decode import DecodeError, decode_image, stamp_ns
from .core.settings import Settings
from .core.sync import FrameSet
from .pipeline import CAMERA_INFO_TOPIC, Pipeline, synchronizer

POLL_NS = 10_000_000  # the node's poll period (node.POLL_PERIOD_S)


@dataclass
class FrameResult:
    """One frame the node produced: when, from what, how fast, and its labels."""

    stamp_ns: int
    anchor: str
    modalities: tuple[str, ...]
    labels: np.ndarray | None
    latency_ms: float | None = None  # sensor stamp -> labels available
    processing_ms: float | None = None  # model time alone
    image: np.ndarray | None = None  # the camera image, kept for overlays (a few frames only)


@dataclass
class OfflineRun:
    frames: list[FrameResult]
    ground_truth: dict[int, np.ndarray]
    decode_errors: dict[str, int] = field(default_factory=dict)
    sync_drops: dict[str, int] = field(default_factory=dict)
    health_events: list[tuple[float, str, str]] = field(
        default_factory=list
    )  # (t_s, modality, state)
    start_ns: int = 0


def run_offline(
    bag: BagContents,
    predict: Callable[[dict[str, Any]], Any],
    settings: Settings,
    drops: Sequence[DropWindow] = (),
    labels_topic: str = LABELS_TOPIC,
    keep_images: int = 4,
) -> OfflineRun:
    """Play ``bag`` through the node's decode + sync with the node's ``settings``, then
    ``predict`` (``Segmentor.predict``) each frame set; no DDS, the bag's log time is the clock."""
    sync = synchronizer(settings)
    pipeline = Pipeline(settings, palette=[])  # palette: only for outputs, which are not built here
    start = bag.records[0].log_ns if bag.records else 0
    run = OfflineRun([], {}, start_ns=start)
    labels_topic = "/" + labels_topic.lstrip("/")

    def infer(frames: list[FrameSet]) -> None:
        for f in frames:
            arrays = pipeline.arrays(f)
            if not arrays:
                continue
            t = time.perf_counter()
            pred = predict(arrays)
            elapsed = (time.perf_counter() - t) * 1e3
            image = arrays.get("rgb") if len(run.frames) < keep_images else None
            run.frames.append(
                FrameResult(
                    f.stamp_ns, f.anchor, pred.modalities, pred.labels, None, elapsed, image
                )
            )

    for rec in bag.records:
        t_s = (rec.log_ns - start) * 1e-9
        modality = modality_of(rec.topic)
        try:
            if rec.topic == labels_topic:
                msg = deserialize(rec)
                run.ground_truth[stamp_ns(msg.header)] = decode_image(msg, allowed=("mono8",))
            elif rec.topic == "/" + CAMERA_INFO_TOPIC:
                pipeline.set_camera_info(deserialize(rec))
            elif modality in settings.modalities and not dropped(drops, modality, t_s):
                stamp, sample = pipeline.decode(modality, deserialize(rec))
                infer(sync.push(modality, stamp, sample, rec.log_ns))
        except DecodeError as e:
            pipeline.count(f"{modality or rec.topic.lstrip('/')}/{e.reason}")
        infer(sync.poll(rec.log_ns))
        for ev in sync.events():
            if ev.kind == "health":
                run.health_events.append(((ev.now_ns - start) * 1e-9, ev.modality, ev.new))
    if bag.records:
        # After the last message the node's clock keeps running (it polls every 10 ms): waiting
        # frame sets expire and go out, sensors go stale. Step it the same way; one big jump
        # would age the waiting messages out instead.
        end = bag.records[-1].log_ns + max(settings.timeout_ns.values()) + settings.wait_ns
        for now in range(bag.records[-1].log_ns, end + POLL_NS, POLL_NS):
            infer(sync.poll(now))
    run.decode_errors = pipeline.error_counts()
    run.sync_drops = {k: v for k, v in sync.drops.items() if v}
    return run


def match_ground_truth(frames: Sequence[FrameResult], ground_truth: dict[int, np.ndarray],
                       tolerance_ns: int) -> list[tuple[FrameResult, np.ndarray]]:  # fmt: skip
    """Pair each frame with the ground-truth labels nearest in stamp, within ``tolerance_ns``.

    An RGB-anchored frame has the labels' own stamp; a frame anchored on another sensor (RGB
    dropped) is paired with the camera frame nearest in time.
    """
    stamps = np.array(sorted(ground_truth), dtype=np.int64)
    pairs = []
    if not stamps.size:
        return pairs
    for f in frames:
        if f.labels is None:
            continue
        i = (
            int(np.clip(np.searchsorted(stamps, f.stamp_ns), 1, len(stamps) - 1))
            if len(stamps) > 1
            else 0
        )
        j = min(
            (i - 1, i) if len(stamps) > 1 else (0,), key=lambda k: abs(int(stamps[k]) - f.stamp_ns)
        )
        if abs(int(stamps[j]) - f.stamp_ns) <= tolerance_ns:
            gt = ground_truth[int(stamps[j])]
            if gt.shape == f.labels.shape:
                pairs.append((f, gt))
    return pairs


def score(
    pairs: Sequence[tuple[FrameResult, np.ndarray]], classes: Sequence[str]
) -> tuple[SubsetScores, dict[int, float]]:
    """Per-subset confusion matrices, and each scored frame's own mIoU by stamp (for plots)."""
    scores = SubsetScores(classes)
    per_frame = {}
    for f, gt in pairs:
        scores.add(subset_name(f.modalities), f.labels, gt)
        per_frame[f.stamp_ns] = 100.0 * miou(confusion_matrix(f.labels, gt, len(classes)))
    return scores, per_frame
