"""A sensor feeder for the node's benchmarks: frame sets of any size and point count, over DDS.

    python bench/feeder.py --width 640 --height 480 --points 100000 --rate 15

Publishes rgb/image (rgb8), depth/image (16UC1), event/image (mono8), lidar/points (x, y, z,
intensity) and rgb/camera_info at ``--rate`` Hz with one stamp per frame set (one device),
the contents random but built once (publishing costs a copy, not a render: unlike the
synthetic rig it keeps up at 1024x1024 and 30 Hz). The cloud lies in front of the camera,
inside its field of view, for the node's extrinsic :data:`LIDAR_TO_CAMERA`. Prints one JSON
line per event, as anyseg_sim.live_rig does (``anyseg_tools.harness.Watcher`` reads them):
``pub`` (stamp), ``labels`` (stamp, latency_ms from the stamp to arrival) and ``info``;
with ``--record DIR`` the first labels images are saved as ``DIR/<stamp>.npy`` (``recorded``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# LiDAR x forward, y left, z up -> camera optical frame, LiDAR 0.3 m above the camera.
LIDAR_TO_CAMERA = [
    0.0,
    -1.0,
    0.0,
    0.0,
    0.0,
    0.0,
    -1.0,
    -0.3,
    1.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    1.0,
]


def emit(**kw) -> None:
    kw.setdefault("t", time.monotonic())
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def frame_arrays(width: int, height: int, points: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random raw sensor arrays of one frame set (the LiDAR in its own frame)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(2.0, 60.0, points)
    half = np.tan(np.radians(40.0))  # inside the camera's 90 degree field of view, mostly
    cloud = np.stack(
        [x, rng.uniform(-half, half, points) * x, rng.uniform(-0.3, 0.3, points) * x],
        1,
    )
    cloud = np.concatenate([cloud, rng.uniform(0.0, 1.0, (points, 1))], 1).astype(np.float32)
    return {
        "rgb": rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
        "depth": rng.integers(300, 60000, (height, width), dtype=np.uint16),
        "event": np.where(rng.random((height, width)) < 0.05, 131, 128).astype(np.uint8),
        "lidar": cloud,
    }


def camera_matrix(width: int, height: int) -> list[float]:
    f = width / 2.0  # 90 degrees horizontally
    return [f, 0.0, width / 2.0, 0.0, f, height / 2.0, 0.0, 0.0, 1.0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--points", type=int, default=100_000)
    p.add_argument("--rate", type=float, default=15.0)
    p.add_argument("--record", default="", help="save the first labels images here (.npy)")
    p.add_argument("--record-max", type=int, default=5)
    args = p.parse_args()

    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
    from std_msgs.msg import Header, String

    from anyseg_ros.core.decode import build_image, build_pointcloud, stamp_parts
    from anyseg_ros.core.topics import CAMERA_INFO_TOPIC, INPUT_TOPICS, OUTPUT_TOPICS

    arrays = frame_arrays(args.width, args.height, args.points)
    kwargs = {
        m: build_image(arrays[m], enc)
        for m, enc in (("rgb", "rgb8"), ("depth", "16UC1"), ("event", "mono8"))
    }
    cloud = build_pointcloud(arrays["lidar"])
    kwargs["lidar"] = {**cloud, "fields": [PointField(**f._asdict()) for f in cloud["fields"]]}

    rclpy.init()
    node = rclpy.create_node("anyseg_bench_feeder")
    pubs = {
        m: node.create_publisher(
            PointCloud2 if m == "lidar" else Image, INPUT_TOPICS[m], qos_profile_sensor_data
        )
        for m in kwargs
    }
    pub_info = node.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, qos_profile_sensor_data)
    info = CameraInfo(
        width=args.width,
        height=args.height,
        distortion_model="plumb_bob",
        k=camera_matrix(args.width, args.height),
    )

    recorded: list[int] = []

    def on_labels(msg: Image) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        emit(ev="labels", stamp=stamp, latency_ms=(time.time_ns() - stamp) / 1e6)
        if args.record and len(recorded) < args.record_max:
            labels = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
            np.save(Path(args.record) / f"{stamp}.npy", labels[:, : msg.width])
            recorded.append(stamp)
            emit(ev="recorded", stamp=stamp)

    def tick() -> None:
        stamp = time.time_ns()
        header = Header(frame_id="camera")
        header.stamp.sec, header.stamp.nanosec = stamp_parts(stamp)
        for m, kw in kwargs.items():
            msg = PointCloud2(header=header, **kw) if m == "lidar" else Image(header=header, **kw)
            pubs[m].publish(msg)
        info.header = header
        pub_info.publish(info)
        emit(ev="pub", m="rgb", stamp=stamp)

    node.create_subscription(Image, OUTPUT_TOPICS["labels"], on_labels, 10)
    node.create_subscription(
        String, OUTPUT_TOPICS["info"], lambda m: emit(ev="info", **json.loads(m.data)), 10
    )
    node.create_timer(1.0 / args.rate, tick)
    emit(ev="ready")
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
