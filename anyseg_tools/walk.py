"""The node's decode + sync over a recorded bag, with the bag's log time as the clock (no DDS).

What the offline evaluator and training on bags are built on: every message goes through the
node's own :class:`~anyseg_ros.pipeline.Pipeline` and synchroniser, so a frame set cut from a bag
is exactly the one the robot would have formed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from anyseg_ros.core.decode import DecodeError, decode_image, stamp_ns
from anyseg_ros.core.settings import InputSettings, SyncSettings
from anyseg_ros.core.sync import FrameSet
from anyseg_ros.core.topics import CAMERA_INFO_TOPIC, LABELS_TOPIC, modality_of, normalize
from anyseg_ros.pipeline import Pipeline, synchronizer

from .bag import BagContents, BagRecord, DropWindow, deserialize, dropped

POLL_NS = 10_000_000  # the node's poll period (node.POLL_PERIOD_S)


class BagWalk:
    """The node's decode + sync over a bag with the bag's log time as the clock (no DDS).

    Iterating yields ``(frame_set, arrays)`` for every frame set the node would have formed,
    ``arrays`` being the model input. Along the way it collects the ground-truth labels by stamp,
    sensor health changes (seconds from the bag's start) and decode errors, as the node counts them.
    """

    def __init__(
        self,
        bag: BagContents,
        sync: SyncSettings,
        inputs: InputSettings,
        drops: Sequence[DropWindow] = (),
        labels_topic: str = LABELS_TOPIC,
        on_ground_truth: Callable[[int, np.ndarray], None] | None = None,
    ) -> None:
        self.bag, self.sync_settings, self.drops = bag, sync, list(drops)
        self.labels_topic = normalize(labels_topic)
        self.sync = synchronizer(sync)
        self.pipeline = Pipeline(inputs, palette=[])  # palette: only for outputs, not built here
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
            end = last + max(self.sync_settings.timeout_ns.values()) + self.sync_settings.wait_ns
            for now in range(last, end + POLL_NS, POLL_NS):
                yield from self._assemble(self.sync.poll(now))
            self._note_events()

    def _consume(self, rec: BagRecord) -> list[FrameSet]:
        modality = modality_of(rec.topic)
        try:
            if rec.topic == self.labels_topic:
                msg = deserialize(rec)
                self.on_ground_truth(stamp_ns(msg.header), decode_image(msg, allowed=("mono8",)))
            elif rec.topic == normalize(CAMERA_INFO_TOPIC):
                self.pipeline.set_camera_info(deserialize(rec))
            elif modality in self.sync_settings.modalities and not dropped(
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
