"""Write one synthetic drive as a rosbag2 (mcap or sqlite3) with the node's default topics.

Each sensor runs at its own rate with small stamp jitter and is rendered at its own stamp (the
world is analytic, so any instant can be rendered), then logged a little later than its stamp
(transport latency), in log-time order:

    topic                 type                       rate   frame_id
    /rgb/image            sensor_msgs/Image rgb8     20 Hz  camera_optical
    /rgb/camera_info      sensor_msgs/CameraInfo     20 Hz  camera_optical (same stamp)
    /ground_truth/labels  sensor_msgs/Image mono8    20 Hz  camera_optical (the rgb stamp)
    /depth/image          sensor_msgs/Image 16UC1|32FC1  15 Hz  camera_optical (registered)
    /event/image          sensor_msgs/Image mono8    30 Hz  camera_optical (events since the
                                                             previous event frame)
    /lidar/points         sensor_msgs/PointCloud2    10 Hz  lidar (x, y, z, intensity float32)

``calibration.yaml`` beside the bag holds the lidar->camera extrinsic as the node takes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from .world import SyntheticWorld

START_NS = 1_700_000_000 * 10**9  # a fixed epoch: same seed, same stamps
CAMERA_FRAME, LIDAR_FRAME = "camera_optical", "lidar"


@dataclass(frozen=True)
class SensorSchedule:
    topic: str
    rate_hz: float
    latency_s: float  # log time = stamp + latency (+ up to 1 ms)
    jitter_s: float = 0.0005  # standard deviation of the stamp around the nominal period


SCHEDULES = {
    "rgb": SensorSchedule("/rgb/image", 20.0, 0.008),
    "depth": SensorSchedule("/depth/image", 15.0, 0.012),
    "event": SensorSchedule("/event/image", 30.0, 0.004),
    "lidar": SensorSchedule("/lidar/points", 10.0, 0.02),
}
CAMERA_INFO_TOPIC = "/rgb/camera_info"
LABELS_TOPIC = "/ground_truth/labels"


def stamps(world: SyntheticWorld, sensor: str, duration: float) -> np.ndarray:
    """Capture times (s) of ``sensor`` in [0, duration): nominal period plus clipped jitter."""
    sch = SCHEDULES[sensor]
    n = int(np.ceil(duration * sch.rate_hz - 1e-9))
    rng = np.random.Generator(
        np.random.PCG64(
            np.random.SeedSequence([world.config.seed, 100, list(SCHEDULES).index(sensor)])
        )
    )
    jitter = np.clip(rng.normal(0.0, sch.jitter_s, n), -4 * sch.jitter_s, 4 * sch.jitter_s)
    t = np.arange(n) / sch.rate_hz + jitter
    t[0] = max(t[0], 0.0)
    return t


def to_ns(t: float) -> int:
    return START_NS + int(round(t * 1e9))


def write_bag(
    path: str | Path,
    world: SyntheticWorld,
    *,
    frames: int,
    condition: str = "sun",
    failure: str | None = None,
    storage: str = "mcap",
    depth_encoding: str = "16UC1",
    on_message: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Record ``frames`` camera frames (frames / 20 s of driving) into a new bag at ``path``.
    Returns the message count per topic. ``on_message(sensor)`` is called per rendered sample."""
    if storage not in ("mcap", "sqlite3"):
        raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    if depth_encoding not in ("16UC1", "32FC1"):
        raise ValueError(f"depth_encoding must be '16UC1' or '32FC1', got {depth_encoding!r}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    ts = get_typestore(Stores.ROS2_KILTED)
    msgs = _Messages(ts, world)
    duration = frames / SCHEDULES["rgb"].rate_hz
    events = []  # (log_ns, order, sensor, t, t_previous)
    for order, sensor in enumerate(SCHEDULES):
        t = stamps(world, sensor, duration)
        if sensor == "rgb":
            t = t[:frames]
        lat_rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([world.config.seed, 200, order]))
        )
        latency = SCHEDULES[sensor].latency_s + lat_rng.uniform(0.0, 0.001, len(t))
        prev = np.concatenate([[t[0] - 1.0 / SCHEDULES[sensor].rate_hz], t[:-1]])
        events += [
            (to_ns(a + b), order, sensor, a, p) for a, b, p in zip(t, latency, prev, strict=True)
        ]
    events.sort()

    counts: dict[str, int] = {}
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(Path(path), version=9, storage_plugin=plugin) as writer:
        conns = {}

        def put(topic: str, msg, log_ns: int) -> None:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=ts)
            writer.write(conns[topic], log_ns, ts.serialize_cdr(msg, msg.__msgtype__))
            counts[topic] = counts.get(topic, 0) + 1

        for log_ns, _, sensor, t, t_prev in events:
            header = msgs.header(t, LIDAR_FRAME if sensor == "lidar" else CAMERA_FRAME)
            if sensor == "rgb":
                rgb, labels = world.camera(t, condition, failure)
                put(SCHEDULES["rgb"].topic, msgs.image(header, rgb, "rgb8"), log_ns)
                put(CAMERA_INFO_TOPIC, msgs.camera_info(header), log_ns)
                put(LABELS_TOPIC, msgs.image(header, labels, "mono8"), log_ns)
            elif sensor == "depth":
                d = world.depth(t, condition)
                if depth_encoding == "16UC1":
                    mm = np.round(d.astype(np.float64) * 1000.0)
                    img = np.where(mm <= 65535, mm, 0).astype(np.uint16)  # beyond 65.5 m: invalid
                else:
                    img = np.where(d > 0, d, np.nan).astype(np.float32)  # REP 118: NaN = no return
                put(SCHEDULES["depth"].topic, msgs.image(header, img, depth_encoding), log_ns)
            elif sensor == "event":
                ev = world.events(t_prev, t, condition, failure)
                put(SCHEDULES["event"].topic, msgs.image(header, ev, "mono8"), log_ns)
            else:
                points, _ = world.lidar(t, condition, failure)
                put(SCHEDULES["lidar"].topic, msgs.cloud(header, points), log_ns)
            if on_message:
                on_message(sensor)
    return counts


class _Messages:
    """Builders for the rosbags message classes of one typestore."""

    def __init__(self, ts, world: SyntheticWorld) -> None:
        self.ts, self.world = ts, world
        self.T = ts.types

    def header(self, t: float, frame_id: str):
        ns = to_ns(t)
        stamp = self.T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
        return self.T["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def image(self, header, array: np.ndarray, encoding: str):
        a = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))  # is_bigendian = 0
        h, w = a.shape[:2]
        data = a.view(np.uint8).reshape(-1)
        return self.T["sensor_msgs/msg/Image"](
            header=header,
            height=h,
            width=w,
            encoding=encoding,
            is_bigendian=0,
            step=data.size // h,
            data=data,
        )

    def camera_info(self, header):
        ci = self.world.camera_info
        roi = self.T["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        )
        return self.T["sensor_msgs/msg/CameraInfo"](
            header=header,
            height=ci.height,
            width=ci.width,
            distortion_model=ci.distortion_model,
            d=ci.D.astype(np.float64),
            k=ci.K.reshape(-1).astype(np.float64),
            r=np.eye(3).reshape(-1),
            p=ci.P.reshape(-1).astype(np.float64),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

    def cloud(self, header, points: np.ndarray):
        field = self.T["sensor_msgs/msg/PointField"]
        fields = [
            field(name=n, offset=4 * i, datatype=field.FLOAT32, count=1)
            for i, n in enumerate(["x", "y", "z", "intensity"])
        ]
        data = np.ascontiguousarray(points, dtype="<f4").view(np.uint8).reshape(-1)
        return self.T["sensor_msgs/msg/PointCloud2"](
            header=header,
            height=1,
            width=len(points),
            fields=fields,
            is_bigendian=False,
            point_step=16,
            row_step=16 * len(points),
            data=data,
            is_dense=True,
        )
