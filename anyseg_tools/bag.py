"""rosbag2 reading and writing with ``rosbags`` (no rclpy), and sensor-drop schedules.

Shared by the replay tool, the offline evaluator, training on recorded bags and the synthetic
world's recorder, so a bag is read and written the same way everywhere. A bag that breaks
part-way (truncated file, corrupt chunk) yields its readable part plus the reason it stopped.
Topic names are compared in one normalised spelling (:func:`anyseg_ros.core.topics.normalize`),
whether the recorder wrote them with a leading slash or not.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from anyseg_ros.core.decode import stamp_ns, stamp_parts
from anyseg_ros.core.topics import INPUT_TOPICS, normalize


class BagError(RuntimeError):
    """A bag that cannot be opened at all."""


@dataclass(frozen=True)
class BagRecord:
    """One stored message: topic (normalised), type name, the recorder's log time and raw CDR."""

    topic: str
    msgtype: str
    log_ns: int
    raw: bytes


@dataclass
class BagContents:
    """A bag's readable messages in log-time order, and why reading stopped early, if it did."""

    path: Path
    records: list[BagRecord]
    error: str | None = None

    def topics(self) -> dict[str, str]:
        return {r.topic: r.msgtype for r in self.records}


# Message types that real recordings carry but rosbags' Kilted store lacks (no pip wheels
# either), registered from their .msg text (event_camera_msgs, dvs_msgs' ROS 2 port; older
# bags name EventPacket event_array_msgs/msg/EventArray).
_EVENT_PACKET = """std_msgs/Header header
uint32 height
uint32 width
uint64 seq
uint64 time_base
string encoding
bool is_bigendian
uint8[] events
"""
EXTRA_MESSAGE_DEFINITIONS: dict[str, str] = {
    "event_camera_msgs/msg/EventPacket": _EVENT_PACKET,
    "event_array_msgs/msg/EventArray": _EVENT_PACKET,
    "dvs_msgs/msg/Event": "uint16 x\nuint16 y\nbuiltin_interfaces/Time ts\nbool polarity\n",
    "dvs_msgs/msg/EventArray": (
        "std_msgs/Header header\nuint32 height\nuint32 width\ndvs_msgs/Event[] events\n"
    ),
}


@cache
def typestore():
    """The ROS 2 Kilted type store (its CDR interoperates with rclpy both ways), plus
    :data:`EXTRA_MESSAGE_DEFINITIONS`."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for name, text in EXTRA_MESSAGE_DEFINITIONS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def read_bag(path: str | Path, topics: Iterable[str] | None = None) -> BagContents:
    """All messages (of ``topics``, absolute or relative names) of a rosbag2 folder or file.

    Raises :class:`BagError` when nothing can be read; a bag that fails part-way returns what
    came before the failure with ``error`` set.
    """
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {str(path)!r} does not exist")
    wanted = None if topics is None else {normalize(t) for t in topics}
    records: list[BagRecord] = []
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except Exception as e:  # rosbags raises several unrelated types for broken files
        reason = f"{type(e).__name__}: {e}"
        mcaps = sorted(path.glob("*.mcap")) if path.is_dir() else [path] * (path.suffix == ".mcap")
        if not mcaps:
            raise BagError(f"bag {str(path)!r} cannot be opened: {reason}") from None
        # rosbags needs an MCAP file's summary at its end; a truncated recording has none, but
        # its records can still be read in order up to the cut.
        return _read_mcap_stream(path, mcaps, wanted, reason)
    error = None
    try:
        conns = [c for c in reader.connections if wanted is None or normalize(c.topic) in wanted]
        for conn, log_ns, raw in reader.messages(connections=conns):
            records.append(BagRecord(normalize(conn.topic), conn.msgtype, int(log_ns), bytes(raw)))
    except Exception as e:
        error = f"reading stopped after {len(records)} messages: {type(e).__name__}: {e}"
    finally:
        # Closing a broken bag may fail again; the first error is the news.
        with contextlib.suppress(Exception):
            reader.close()
    records.sort(key=lambda r: r.log_ns)
    return BagContents(path, records, error)


def _read_mcap_stream(
    path: Path, files: list[Path], wanted: set[str] | None, reason: str
) -> BagContents:
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader

    records: list[BagRecord] = []
    error = None
    for file in files:
        schemas: dict[int, str] = {}
        channels: dict[int, tuple[str, str]] = {}
        try:
            with open(file, "rb") as f:
                for rec in StreamReader(f).records:
                    if isinstance(rec, Schema):
                        schemas[rec.id] = rec.name
                    elif isinstance(rec, Channel):
                        channels[rec.id] = (normalize(rec.topic), schemas.get(rec.schema_id, ""))
                    elif isinstance(rec, Message) and rec.channel_id in channels:
                        topic, msgtype = channels[rec.channel_id]
                        if wanted is None or topic in wanted:
                            records.append(BagRecord(topic, msgtype, rec.log_time, bytes(rec.data)))
        except Exception as e:
            n = len(records)
            error = f"reading {file.name} stopped after {n} messages: {type(e).__name__}: {e}"
            break
    if not records:
        raise BagError(f"bag {str(path)!r} cannot be opened: {reason}")
    records.sort(key=lambda r: r.log_ns)
    return BagContents(path, records, error or f"read without the file summary ({reason})")


def find_calibration(bag: Path) -> Path | None:
    """``calibration.yaml`` inside a bag folder, or beside the bag (the synthetic world's place)."""
    bag = Path(bag)
    for candidate in (bag / "calibration.yaml", bag.parent / "calibration.yaml"):
        if candidate.is_file():
            return candidate
    return None


def nearest_stamp(stamps: np.ndarray, stamp: int, tolerance_ns: int) -> int | None:
    """The entry of sorted int64 ``stamps`` nearest to ``stamp``, if within ``tolerance_ns``."""
    if not len(stamps):
        return None
    i = int(np.searchsorted(stamps, stamp))
    best = min(
        (j for j in (i - 1, i) if 0 <= j < len(stamps)), key=lambda j: abs(int(stamps[j]) - stamp)
    )
    return int(stamps[best]) if abs(int(stamps[best]) - stamp) <= tolerance_ns else None


def deserialize(record: BagRecord) -> Any:
    """The rosbags message object of a record (fields as in rclpy; ``data`` as numpy arrays)."""
    return typestore().deserialize_cdr(record.raw, record.msgtype)


def header_stamp_ns(msg: Any) -> int:
    return stamp_ns(msg.header)


# ---------------------------------------------------------------- drop schedules


@dataclass(frozen=True)
class DropWindow:
    """Sensor ``modality`` is silent from ``start_s`` to ``end_s`` seconds after the bag's start."""

    modality: str
    start_s: float
    end_s: float

    def covers(self, modality: str, t_s: float) -> bool:
        return modality == self.modality and self.start_s <= t_s < self.end_s


_DROP = re.compile(r"^(\w+):([0-9.]+)-([0-9.]+|end)$")


def parse_drop(text: str) -> DropWindow:
    """``'lidar:5-12.5'`` or ``'rgb:20-end'`` -> :class:`DropWindow`; errors name the problem."""
    m = _DROP.match(text.strip())
    if not m:
        raise ValueError(f"drop {text!r}: expected MODALITY:START-END in seconds, e.g. lidar:5-10")
    name, start, end = m.group(1), float(m.group(2)), m.group(3)
    if name not in INPUT_TOPICS:
        raise ValueError(f"drop {text!r}: unknown modality {name!r}; valid: {list(INPUT_TOPICS)}")
    stop = float("inf") if end == "end" else float(end)
    if stop <= start:
        raise ValueError(f"drop {text!r}: the window ends before it starts")
    return DropWindow(name, start, stop)


def dropped(windows: Sequence[DropWindow], modality: str, t_s: float) -> bool:
    return any(w.covers(modality, t_s) for w in windows)


def concat_bags(
    parts: Sequence[str | Path], out: str | Path, gap_s: float = 0.05, storage: str = "mcap"
) -> Path:
    """Write ``parts`` one after another into a new bag at ``out``.

    Each part's log times and header stamps are shifted to start ``gap_s`` after the previous
    part ended, so the result plays as one continuous recording (e.g. one drive per condition).
    """
    next_start: int | None = None
    with BagWriter(out, storage) as w:
        for part in parts:
            bag = read_bag(part)
            if bag.error:
                raise BagError(f"{part}: {bag.error}")
            if not bag.records:
                continue
            first = bag.records[0].log_ns
            shift = 0 if next_start is None else next_start - first
            for rec in bag.records:
                msg = deserialize(rec)
                if hasattr(msg, "header"):
                    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_parts(
                        header_stamp_ns(msg) + shift
                    )
                w.write(rec.topic, rec.log_ns + shift, msg, rec.msgtype)
            next_start = bag.records[-1].log_ns + shift + int(gap_s * 1e9)
    return Path(out)


class BagWriter:
    """A new rosbag2 (version 9, mcap or sqlite3), one connection per topic, counting messages:

    with BagWriter(path) as bag:
        bag.write("/rgb/image", log_ns, msg)      # a rosbags message (see typestore())
        bag.write_raw(record)                      # a BagRecord as read, CDR untouched
    """

    def __init__(self, path: str | Path, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugins = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
        if storage not in plugins:
            raise ValueError(f"storage must be one of {list(plugins)}, got {storage!r}")
        self.path = Path(path)
        self.counts: dict[str, int] = {}
        self._writer = Writer(self.path, version=9, storage_plugin=plugins[storage])
        self._conns: dict[str, Any] = {}

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer.close()

    def write(self, topic: str, log_ns: int, msg: Any, msgtype: str | None = None) -> None:
        """Serialise a rosbags message (its type from ``__msgtype__`` unless given)."""
        msgtype = msgtype or msg.__msgtype__
        self._put(topic, msgtype, log_ns, typestore().serialize_cdr(msg, msgtype))

    def write_raw(self, record: BagRecord) -> None:
        self._put(record.topic, record.msgtype, record.log_ns, record.raw)

    def _put(self, topic: str, msgtype: str, log_ns: int, raw: bytes) -> None:
        topic = normalize(topic)
        if topic not in self._conns:
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
        self._writer.write(self._conns[topic], log_ns, raw)
        self.counts[topic] = self.counts.get(topic, 0) + 1


# ---------------------------------------------------------------- rosbags message builders


def header_msg(stamp: int, frame_id: str) -> Any:
    """std_msgs/Header (rosbags) stamped ``stamp`` ns."""
    T = typestore().types
    sec, nanosec = stamp_parts(stamp)
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
    )


def image_msg(header: Any, array: np.ndarray, encoding: str) -> Any:
    """sensor_msgs/Image (rosbags), little-endian, rows unpadded."""
    a = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
    h, w = a.shape[:2]
    data = a.view(np.uint8).reshape(-1)
    return typestore().types["sensor_msgs/msg/Image"](
        header=header,
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=data.size // h,
        data=data,
    )


def camera_info_msg(
    header: Any,
    width: int,
    height: int,
    K: np.ndarray,
    D: np.ndarray | None = None,
    P: np.ndarray | None = None,
    distortion_model: str = "plumb_bob",
) -> Any:
    """sensor_msgs/CameraInfo (rosbags); P defaults to [K | 0], D to five zeros."""
    T = typestore().types
    K = np.asarray(K, np.float64).reshape(3, 3)
    P = np.hstack([K, np.zeros((3, 1))]) if P is None else np.asarray(P, np.float64)
    roi = T["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return T["sensor_msgs/msg/CameraInfo"](
        header=header,
        height=height,
        width=width,
        distortion_model=distortion_model,
        d=np.zeros(5) if D is None else np.asarray(D, np.float64).reshape(-1),
        k=K.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=P.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def cloud_msg(header: Any, points: np.ndarray) -> Any:
    """sensor_msgs/PointCloud2 (rosbags): one row of float32 x, y, z[, intensity]."""
    T = typestore().types
    field = T["sensor_msgs/msg/PointField"]
    pts = np.ascontiguousarray(points, dtype="<f4")
    names = ["x", "y", "z", "intensity"][: pts.shape[1]]
    fields = [
        field(name=n, offset=4 * i, datatype=field.FLOAT32, count=1) for i, n in enumerate(names)
    ]
    step = 4 * len(names)
    return T["sensor_msgs/msg/PointCloud2"](
        header=header,
        height=1,
        width=len(pts),
        fields=fields,
        is_bigendian=False,
        point_step=step,
        row_step=step * len(pts),
        data=pts.view(np.uint8).reshape(-1),
        is_dense=True,
    )
