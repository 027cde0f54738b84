"""The node's decode + sync over a recorded bag, with the bag's log time as the clock (no DDS).

What the offline evaluator and training on bags are built on: every message goes through the
node's own :class:`~anyseg_ros.pipeline.Pipeline` and synchroniser, so a frame set cut from a bag
is exactly the one the robot would have formed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from anyseg_ros.core.decode import DecodeError, decode_labels, stamp_ns
from anyseg_ros.core.settings import InputSettings, SyncSettings
from anyseg_ros.core.sync import FrameSet
from anyseg_ros.core.topics import (
    CAMERA_INFO_TOPICS,
    EVENTS_TOPIC,
    LABELS_TOPIC,
    TF_STATIC_TOPIC,
    TF_TOPIC,
    normalize,
    transport_topic,
)
from anyseg_ros.pipeline import EVENT_MESSAGE_TYPES, Pipeline, input_topics, synchronizer

from .bag import BagContents, BagRecord, DropWindow, deserialize, dropped

POLL_NS = 10_000_000  # the node's poll period (node.POLL_PERIOD_S)
# What an input looks like in a bag, per transport / format parameter value.
_EVENT_FORMATS = {t: f for f, t in EVENT_MESSAGE_TYPES.items()}
_EVENT_FORMATS["event_array_msgs/msg/EventArray"] = "event_packet"  # EventPacket's old name


def bag_inputs(topics: Mapping[str, str], values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameter values with each input's transport / event format taken from the bag's
    topics and types where ``values`` does not set it: ``rgb/image/compressed`` ->
    ``rgb.transport: compressed``, ``depth/image/compressedDepth`` -> ``compressedDepth``,
    ``event/events`` of EventPacket / EventArray -> ``event.format``. Raw wins when a bag holds
    both (image_transport republishers record every transport)."""
    out = dict(values)
    names = {normalize(t): ty for t, ty in topics.items()}
    for m, options in (("rgb", ("raw", "compressed")), ("depth", ("raw", "compressedDepth"))):
        found = [t for t in options if normalize(transport_topic(m, t)) in names]
        if found and f"{m}.transport" not in out:
            out[f"{m}.transport"] = found[0]
    if "event.format" not in out:
        events = names.get(normalize(EVENTS_TOPIC))
        if normalize(transport_topic("event")) not in names and events in _EVENT_FORMATS:
            out["event.format"] = _EVENT_FORMATS[events]
    if out.get("event.format", "frame") == "frame" and "event.transport" not in out:
        found = [
            t for t in ("raw", "compressed") if normalize(transport_topic("event", t)) in names
        ]
        if found:
            out["event.transport"] = found[0]
    return out


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
        model_max_intensity: float = 1.0,
    ) -> None:
        self.bag, self.sync_settings, self.drops = bag, sync, list(drops)
        self.labels_topic = normalize(labels_topic)
        self.sync = synchronizer(sync)
        # palette: only for outputs, not built here
        self.pipeline = Pipeline(inputs, palette=[], model_max_intensity=model_max_intensity)
        self.start_ns = bag.records[0].log_ns if bag.records else 0
        # Ground truth by stamp, unless a consumer takes it as it comes (bounded memory).
        self.ground_truth: dict[int, np.ndarray] = {}
        self.on_ground_truth = on_ground_truth or self.ground_truth.__setitem__
        self.health_events: list[tuple[float, str, str]] = []  # (t_s, modality, state)
        self.routes: dict[str, tuple[str, str | None]] = {}  # topic -> (kind, modality)
        for spec in input_topics(inputs, sync.modalities):
            self.routes[normalize(spec.topic)] = (spec.kind, spec.modality)
        for m, topic in CAMERA_INFO_TOPICS.items():
            self.routes.setdefault(normalize(topic), ("camera_info", m))
        for kind, topic in (("tf", TF_TOPIC), ("tf_static", TF_STATIC_TOPIC)):
            self.routes[normalize(topic)] = (kind, None)
        # /tf_static is latched live (a late subscriber still gets it); in a bag it sits near
        # the start, maybe after the first sensor messages: read all of it first.
        for rec in bag.records:
            if rec.topic == normalize(TF_STATIC_TOPIC):
                try:
                    self.pipeline.add_tf(deserialize(rec), static=True)
                except Exception as e:  # rosbags' own error for a broken record
                    self.pipeline.count(f"tf_static/{type(e).__name__}")

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
        kind, modality = self.routes.get(rec.topic, ("", None))
        try:
            if rec.topic == self.labels_topic:
                msg = deserialize(rec)
                self.on_ground_truth(stamp_ns(msg.header), decode_labels(msg))
            elif kind == "camera_info":
                self.pipeline.set_camera_info(deserialize(rec), modality)
            elif kind == "tf":  # (tf_static was read before the walk)
                self.pipeline.add_tf(deserialize(rec), static=False)
            elif kind == "sensor" and not dropped(
                self.drops, modality, (rec.log_ns - self.start_ns) * 1e-9
            ):
                decoded = self.pipeline.decode(modality, deserialize(rec))
                if decoded is not None:
                    return self.sync.push(modality, *decoded, rec.log_ns)
        except DecodeError as e:
            key = modality if kind == "sensor" else kind or rec.topic.lstrip("/")
            self.pipeline.count(f"{key}/{e.reason}")
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
