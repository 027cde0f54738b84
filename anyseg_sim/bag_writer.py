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

``robot=True`` records the same drive as real drivers would (see anyseg_sim/robot_writer.py):
jpeg, compressedDepth, evt3 event packets, an Ouster-like organised cloud, a camera_info per
camera with its own optical frame and /tf_static; no calibration file is needed to use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anyseg_ros.core.topics import (
    CAMERA_INFO_TOPIC,
    CAMERA_INFO_TOPICS,
    EVENTS_TOPIC,
    INPUT_TOPICS,
    LABELS_TOPIC,
    TF_STATIC_TOPIC,
    normalize,
    transport_topic,
)
from anyseg_tools.bag import BagWriter, camera_info_msg, cloud_msg, header_msg, image_msg

from . import robot_writer as robot_io
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
    "rgb": SensorSchedule(normalize(INPUT_TOPICS["rgb"]), 20.0, 0.008),
    "depth": SensorSchedule(normalize(INPUT_TOPICS["depth"]), 15.0, 0.012),
    "event": SensorSchedule(normalize(INPUT_TOPICS["event"]), 30.0, 0.004),
    "lidar": SensorSchedule(normalize(INPUT_TOPICS["lidar"]), 10.0, 0.02),
}


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
    robot: bool = False,
) -> dict[str, int]:
    """Record ``frames`` camera frames (frames / 20 s of driving) into a new bag at ``path``.
    Returns the message count per topic. ``on_message(sensor)`` is called per rendered sample."""
    if storage not in ("mcap", "sqlite3"):
        raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    if depth_encoding not in ("16UC1", "32FC1"):
        raise ValueError(f"depth_encoding must be '16UC1' or '32FC1', got {depth_encoding!r}")
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    ci = world.camera_info
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

    if robot:
        return _write_robot_bag(path, world, events, condition, failure, storage, on_message)
    with BagWriter(path, storage) as bag:
        for log_ns, _, sensor, t, t_prev in events:
            header = header_msg(to_ns(t), LIDAR_FRAME if sensor == "lidar" else CAMERA_FRAME)
            if sensor == "rgb":
                rgb, labels = world.camera(t, condition, failure)
                bag.write(SCHEDULES["rgb"].topic, log_ns, image_msg(header, rgb, "rgb8"))
                info = camera_info_msg(
                    header, ci.width, ci.height, ci.K, ci.D, ci.P, ci.distortion_model
                )
                bag.write(CAMERA_INFO_TOPIC, log_ns, info)
                bag.write(LABELS_TOPIC, log_ns, image_msg(header, labels, "mono8"))
            elif sensor == "depth":
                d = world.depth(t, condition)
                if depth_encoding == "16UC1":
                    mm = np.round(d.astype(np.float64) * 1000.0)
                    img = np.where(mm <= 65535, mm, 0).astype(np.uint16)  # beyond 65.5 m: invalid
                else:
                    img = np.where(d > 0, d, np.nan).astype(np.float32)  # REP 118: NaN = no return
                bag.write(SCHEDULES["depth"].topic, log_ns, image_msg(header, img, depth_encoding))
            elif sensor == "event":
                ev = world.events(t_prev, t, condition, failure)
                bag.write(SCHEDULES["event"].topic, log_ns, image_msg(header, ev, "mono8"))
            else:
                points, _ = world.lidar(t, condition, failure)
                bag.write(SCHEDULES["lidar"].topic, log_ns, cloud_msg(header, points))
            if on_message:
                on_message(sensor)
    return dict(bag.counts)


def _write_robot_bag(path, world, events, condition, failure, storage, on_message) -> dict:
    """The drive of :func:`write_bag` with real drivers' messages (see the module docstring)."""
    ci = world.camera_info
    frames = {"rgb": robot_io.RGB_FRAME, "depth": robot_io.DEPTH_FRAME}
    recorder = robot_io.EventRecorder(ci.width, ci.height)
    latency = SCHEDULES["event"].latency_s
    with BagWriter(path, storage) as bag:
        bag.write(TF_STATIC_TOPIC, START_NS, robot_io.tf_static_msg(START_NS, world.rig))
        for log_ns, _, sensor, t, t_prev in events:
            if sensor == "lidar":
                header = header_msg(to_ns(t), robot_io.LIDAR_FRAME)
                grid, _ = world.lidar_organized(t, condition, failure)
                bag.write(INPUT_TOPICS["lidar"], log_ns, robot_io.ouster_cloud_msg(header, grid))
            elif sensor == "event":
                recorder.add(world.events(t_prev, t, condition, failure), t_prev, t)
                for stamp, packet in recorder.packets(t, to_ns):
                    bag.write(EVENTS_TOPIC, stamp + int(latency * 1e9), packet)
                header = header_msg(to_ns(t), robot_io.EVENT_FRAME)
                info = camera_info_msg(header, ci.width, ci.height, ci.K, ci.D, ci.P)
                bag.write(CAMERA_INFO_TOPICS["event"], log_ns, info)
            else:
                header = header_msg(to_ns(t), frames[sensor])
                if sensor == "rgb":
                    rgb, labels = world.camera(t, condition, failure)
                    topic = transport_topic("rgb", "compressed")
                    bag.write(topic, log_ns, robot_io.compressed_msg(header, rgb))
                    bag.write(LABELS_TOPIC, log_ns, image_msg(header, labels, "mono8"))
                else:
                    d = world.depth(t, condition)
                    mm = np.round(d.astype(np.float64) * 1000.0)
                    mm = np.where(mm <= 65535, mm, 0).astype(np.uint16)
                    topic = transport_topic("depth", "compressedDepth")
                    bag.write(topic, log_ns, robot_io.compressed_depth_msg(header, mm))
                info = camera_info_msg(header, ci.width, ci.height, ci.K, ci.D, ci.P)
                bag.write(CAMERA_INFO_TOPICS[sensor], log_ns, info)
            if on_message:
                on_message(sensor)
    return dict(bag.counts)
