"""Scoring the frames the node produced (offline or live) against a bag's ground truth.

Offline mode (:func:`run_offline`) runs the node's own path with no DDS
(:class:`~anyseg_tools.walk.BagWalk`) and predicts each frame set; it is deterministic for a
given bag, schedule and checkpoint. Live mode (:mod:`anyseg_tools.live`) produces the same
:class:`FrameResult` rows from the real node's outputs; one :class:`Scorer` scores both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anyseg_model.metrics import SubsetScores, confusion_matrix, miou
from anyseg_model.modalities import subset_name
from anyseg_ros.core.decode import labels_for_points
from anyseg_ros.core.settings import InputSettings, SyncSettings
from anyseg_ros.core.topics import LABELS_TOPIC

from .bag import BagContents, DropWindow, nearest_stamp
from .walk import BagWalk


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
    health_events: list[tuple[float, str, str]] = field(default_factory=list)  # (t_s, mod, state)
    duration_s: float = 0.0
    inputs: dict[str, str] = field(default_factory=dict)  # transports, extrinsic source, ...
    input_notes: list[str] = field(default_factory=list)  # refusals / assumptions, once each


def run_offline(
    bag: BagContents,
    predict: Callable[[dict[str, Any]], Any],
    sync: SyncSettings,
    inputs: InputSettings,
    classes: Sequence[str],
    drops: Sequence[DropWindow] = (),
    labels_topic: str = LABELS_TOPIC,
    tolerance_ns: int = 30_000_000,
    keep_images: int = 4,
    keep_clouds: int = 0,
    model_max_intensity: float = 1.0,
) -> OfflineRun:
    """Play ``bag`` through the node's decode + sync with the node's settings, ``predict``
    (``Segmentor.predict``) each frame set and score it; no DDS, the bag's log time is the clock."""
    scorer = Scorer(classes, tolerance_ns)
    walk = BagWalk(
        bag,
        sync,
        inputs,
        drops,
        labels_topic,
        on_ground_truth=scorer.add_ground_truth,
        model_max_intensity=model_max_intensity,
    )
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
            frame.cloud = (scan.points, labels_for_points(scan.projection.flat, pred.labels))
        frames.append(frame)
        scorer.add_frame(frame)
    scorer.finish()
    sync_drops = {k: v for k, v in walk.sync.drops.items() if v}
    errors = walk.pipeline.error_counts()
    return OfflineRun(
        frames,
        scorer,
        errors,
        sync_drops,
        walk.health_events,
        walk.duration_s,
        dict(walk.pipeline.input_status()),
        walk.pipeline.take_notes(),
    )
