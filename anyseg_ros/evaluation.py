"""Evaluation of a recorded bag: frames the node produced (offline or live) scored per subset.

Offline mode runs the node's own path with no DDS: decode each message, push it into the
:class:`~anyseg_ros.core.sync.ModalitySynchronizer` with the bag's log time as the clock, assemble
each frame set into model inputs (the node's :class:`~anyseg_ros.pipeline.Pipeline`) and predict. It is deterministic for a given bag, schedule and
checkpoint. Live mode (``anyseg_ros.live``) produces the same :class:`FrameResult` rows from the
real node's outputs, so both are scored and reported by the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anyseg_model.metrics import SubsetScores, confusion_matrix, miou
from anyseg_model.modalities import subset_name

from .bag import (
    LABELS_TOPIC,
    BagContents,
    BagRecord,
    DropWindow,
    deserialize,
    dropped,
    modality_of,
    nearest_stamp,
)
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


class BagWalk:
    """The node's decode + sync over a bag with the bag's log time as the clock (no DDS).

    Iterating yields ``(frame_set, arrays)`` for every frame set the node would have formed,
    ``arrays`` being the model input. Along the way it collects the ground-truth labels by stamp,
    sensor health changes (seconds from the bag's start) and decode errors, as the node counts them.
    """

    def __init__(self, bag: BagContents, settings: Settings, drops: Sequence[DropWindow] = (),
                 labels_topic: str = LABELS_TOPIC) -> None:  # fmt: skip
        self.bag, self.settings, self.drops = bag, settings, list(drops)
        self.labels_topic = "/" + labels_topic.lstrip("/")
        self.sync = synchronizer(settings)
        self.pipeline = Pipeline(settings, palette=[])  # palette: only for outputs, not built here
        self.start_ns = bag.records[0].log_ns if bag.records else 0
        self.ground_truth: dict[int, np.ndarray] = {}
        self.health_events: list[tuple[float, str, str]] = []  # (t_s, modality, state)

    @property
    def duration_s(self) -> float:
        return (self.bag.records[-1].log_ns - self.start_ns) * 1e-9 if self.bag.records else 0.0

    def __iter__(self) -> Iterator[tuple[FrameSet, dict[str, Any]]]:
        for rec in self.bag.records:
            yield from self._assemble(self._consume(rec))
            yield from self._assemble(self.sync.poll(rec.log_ns))
            self._note_events()
        if self.bag.records:
            # After the last message the node's clock keeps running (it polls every 10 ms):
            # waiting frame sets expire and go out. Step it the same way; one big jump would age
            # the waiting messages out instead.
            last = self.bag.records[-1].log_ns
            end = last + max(self.settings.timeout_ns.values()) + self.settings.wait_ns
            for now in range(last, end + POLL_NS, POLL_NS):
                yield from self._assemble(self.sync.poll(now))
            self._note_events()

    def _consume(self, rec: BagRecord) -> list[FrameSet]:
        modality = modality_of(rec.topic)
        try:
            if rec.topic == self.labels_topic:
                msg = deserialize(rec)
                self.ground_truth[stamp_ns(msg.header)] = decode_image(msg, allowed=("mono8",))
            elif rec.topic == "/" + CAMERA_INFO_TOPIC:
                self.pipeline.set_camera_info(deserialize(rec))
            elif modality in self.settings.modalities and not dropped(
                self.drops, modality, (rec.log_ns - self.start_ns) * 1e-9
            ):
                stamp, sample = self.pipeline.decode(modality, deserialize(rec))
                return self.sync.push(modality, stamp, sample, rec.log_ns)
        except DecodeError as e:
            self.pipeline.count(f"{modality or rec.topic.lstrip('/')}/{e.reason}")
        return []

    def _assemble(self, sets: list[FrameSet]) -> Iterator[tuple[FrameSet, dict[str, Any]]]:
        for fs in sets:
            arrays = self.pipeline.arrays(fs)
            if arrays:
                yield fs, arrays

    def _note_events(self) -> None:
        for ev in self.sync.events():
            if ev.kind == "health":
                self.health_events.append(((ev.now_ns - self.start_ns) * 1e-9, ev.modality, ev.new))


@dataclass
class OfflineRun:
    frames: list[FrameResult]
    ground_truth: dict[int, np.ndarray]
    decode_errors: dict[str, int] = field(default_factory=dict)
    sync_drops: dict[str, int] = field(default_factory=dict)
    health_events: list[tuple[float, str, str]] = field(
        default_factory=list
    )  # (t_s, modality, state)
    duration_s: float = 0.0


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
    walk = BagWalk(bag, settings, drops, labels_topic)
    frames = []
    for fs, arrays in walk:
        t = time.perf_counter()
        pred = predict(arrays)
        elapsed = (time.perf_counter() - t) * 1e3
        image = arrays.get("rgb") if len(frames) < keep_images else None
        frames.append(
            FrameResult(fs.stamp_ns, fs.anchor, pred.modalities, pred.labels, None, elapsed, image)
        )
    sync_drops = {k: v for k, v in walk.sync.drops.items() if v}
    return OfflineRun(frames, walk.ground_truth, walk.pipeline.error_counts(), sync_drops,
                      walk.health_events, walk.duration_s)  # fmt: skip


def match_ground_truth(
    frames: Sequence[FrameResult], ground_truth: dict[int, np.ndarray], tolerance_ns: int
) -> list[tuple[FrameResult, np.ndarray]]:
    """Pair each frame with the ground-truth labels nearest in stamp, within ``tolerance_ns``.

    An RGB-anchored frame has the labels' own stamp; a frame anchored on another sensor (RGB
    dropped) is paired with the camera frame nearest in time.
    """
    stamps = np.array(sorted(ground_truth), dtype=np.int64)
    pairs = []
    for f in frames:
        s = nearest_stamp(stamps, f.stamp_ns, tolerance_ns) if f.labels is not None else None
        if s is not None and ground_truth[s].shape == f.labels.shape:
            pairs.append((f, ground_truth[s]))
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
