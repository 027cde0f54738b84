"""Evaluation of a recorded bag: frames the node produced (offline or live) scored per subset.

Offline mode runs the node's own path with no DDS (:class:`BagWalk`): decode each message, push
it into the synchroniser with the bag's log time as the clock, assemble each frame set into model
inputs with the node's :class:`~anyseg_ros.pipeline.Pipeline`, and predict. It is deterministic
for a given bag, schedule and checkpoint. Live mode (``anyseg_ros.live``) produces the same
:class:`FrameResult` rows from the real node's outputs; one :class:`Scorer` scores both.
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
from .core.decode import DecodeError, decode_image, labels_for_points, stamp_ns
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
    # LiDAR points (N, 3|4) and their labels (N,), kept for a labelled-cloud export
    cloud: tuple[np.ndarray, np.ndarray] | None = None


class BagWalk:
    """The node's decode + sync over a bag with the bag's log time as the clock (no DDS).

    Iterating yields ``(frame_set, arrays)`` for every frame set the node would have formed,
    ``arrays`` being the model input. Along the way it collects the ground-truth labels by stamp,
    sensor health changes (seconds from the bag's start) and decode errors, as the node counts them.
    """

    def __init__(self, bag: BagContents, settings: Settings, drops: Sequence[DropWindow] = (),
                 labels_topic: str = LABELS_TOPIC,
                 on_ground_truth: Callable[[int, np.ndarray], None] | None = None) -> None:  # fmt: skip
        self.bag, self.settings, self.drops = bag, settings, list(drops)
        self.labels_topic = "/" + labels_topic.lstrip("/")
        self.sync = synchronizer(settings)
        self.pipeline = Pipeline(settings, palette=[])  # palette: only for outputs, not built here
        self.start_ns = bag.records[0].log_ns if bag.records else 0
        # Ground truth by stamp, unless a consumer takes it as it comes (bounded memory).
        self.ground_truth: dict[int, np.ndarray] = {}
        self.on_ground_truth = on_ground_truth or self.ground_truth.__setitem__
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
                self.on_ground_truth(stamp_ns(msg.header), decode_image(msg, allowed=("mono8",)))
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


class Scorer:
    """Scores frames against ground-truth labels as both arrive, in either order.

    A frame is paired with the ground truth nearest its stamp within ``tolerance_ns`` (an
    RGB-anchored frame has the labels' own stamp; one anchored on another sensor pairs with the
    nearest camera frame). It is decided once ground truth has arrived past the frame's stamp +
    tolerance, so the nearest is exact, then the frame's label image is let go (frames kept for
    overlays keep theirs). Only the newest ``keep`` ground-truth images are held: a long
    recording is scored in bounded memory.
    """

    def __init__(self, classes: Sequence[str], tolerance_ns: int, keep: int = 256) -> None:
        self.scores = SubsetScores(classes)
        self.per_frame: dict[int, float] = {}  # stamp -> that frame's own mIoU (%)
        self.tolerance_ns, self.keep = tolerance_ns, keep
        self._gt: dict[int, np.ndarray] = {}  # insertion (arrival) order
        self._newest = -1
        self._pending: list[FrameResult] = []

    def add_ground_truth(self, stamp: int, labels: np.ndarray) -> None:
        self._gt[stamp] = labels
        self._newest = max(self._newest, stamp)
        while len(self._gt) > self.keep:
            del self._gt[next(iter(self._gt))]
        self._pending = [f for f in self._pending if not self._try(f)]

    def add_frame(self, frame: FrameResult) -> None:
        if frame.labels is not None and not self._try(frame):
            self._pending.append(frame)

    def finish(self) -> None:
        """No more ground truth will come: decide every frame still waiting."""
        for f in self._pending:
            self._try(f, final=True)
        self._pending = []

    def _try(self, f: FrameResult, final: bool = False) -> bool:
        if not final and self._newest < f.stamp_ns + self.tolerance_ns:
            return False  # a nearer ground truth may still come (stamps arrive in order)
        s = nearest_stamp(np.array(sorted(self._gt), dtype=np.int64), f.stamp_ns, self.tolerance_ns)
        if s is not None and self._gt[s].shape == f.labels.shape:
            self.scores.add(subset_name(f.modalities), f.labels, self._gt[s])
            self.per_frame[f.stamp_ns] = 100.0 * miou(
                confusion_matrix(f.labels, self._gt[s], len(self.scores.classes))
            )
        if f.image is None:
            f.labels = None  # scored (or never will be): the label image is not needed any more
        return True


@dataclass
class OfflineRun:
    frames: list[FrameResult]
    scorer: Scorer
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
    classes: Sequence[str],
    drops: Sequence[DropWindow] = (),
    labels_topic: str = LABELS_TOPIC,
    tolerance_ns: int = 30_000_000,
    keep_images: int = 4,
    keep_clouds: int = 0,
) -> OfflineRun:
    """Play ``bag`` through the node's decode + sync with the node's ``settings``, ``predict``
    (``Segmentor.predict``) each frame set and score it; no DDS, the bag's log time is the clock."""
    scorer = Scorer(classes, tolerance_ns)
    walk = BagWalk(bag, settings, drops, labels_topic, on_ground_truth=scorer.add_ground_truth)
    frames = []
    for fs, arrays in walk:
        t = time.perf_counter()
        pred = predict(arrays)
        elapsed = (time.perf_counter() - t) * 1e3
        image = arrays.get("rgb") if len(frames) < keep_images else None
        frame = FrameResult(
            fs.stamp_ns, fs.anchor, pred.modalities, pred.labels, None, elapsed, image
        )
        if "lidar" in arrays and keep_clouds > 0:
            keep_clouds -= 1
            scan = arrays[
                "lidar"
            ]  # each point labelled by the pixel it projects to, as the node does
            frame.cloud = (scan.points, labels_for_points(scan.projection.pixel, pred.labels))
        frames.append(frame)
        scorer.add_frame(frame)
    scorer.finish()
    sync_drops = {k: v for k, v in walk.sync.drops.items() if v}
    return OfflineRun(frames, scorer, walk.pipeline.error_counts(), sync_drops, walk.health_events,
                      walk.duration_s)  # fmt: skip
