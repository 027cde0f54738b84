"""A stand-in sensor rig for the node's integration tests (run as a child process).

Publishes rgb/image (+ rgb/camera_info), depth/image, event/image and lidar/points like one
synchronised device: a 30 Hz tick, each sensor on the ticks that give its rate, stamped with the
tick time plus a little jitter. Subscribes to the node's outputs and prints one JSON line per
event on stdout; reads commands on stdin:

    stop <modality> | start <modality> | bad <kind> | quit

Simple generated arrays stand in for the synthetic world (a moving box over a gradient, a
ground-plane depth image, an event frame at the box edges, a LiDAR ring in front of the camera).
``--listen`` makes it a pure subscriber that reports what arrives on rgb/image (transport test).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import String

from anyseg_ros.core.decode import build_image, build_pointcloud, stamp_parts

TICK_HZ = 30
FRAME_IDS = {
    "rgb": "camera_rgb",
    "depth": "camera_depth",
    "event": "camera_event",
    "lidar": "lidar",
}
TOPICS = {
    "rgb": "rgb/image",
    "depth": "depth/image",
    "event": "event/image",
    "lidar": "lidar/points",
}
# LiDAR x forward, y left, z up -> camera optical (x right, y down, z forward), LiDAR 0.2 m higher.
LIDAR_TO_CAMERA = [0.0, -1, 0, 0, 0, 0, -1, -0.2, 1, 0, 0, 0, 0, 0, 0, 1]


def emit(**kw) -> None:
    kw.setdefault("t", time.monotonic())
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def make_frames(width: int, height: int, points: int, n: int = 8) -> list[dict[str, np.ndarray]]:
    """``n`` frames of each sensor, cycled while publishing."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    frames = []
    for k in range(n):
        x0 = int((k / n) * (width - width // 4))
        box = (xx >= x0) & (xx < x0 + width // 4) & (yy >= height // 3) & (yy < 2 * height // 3)
        rgb = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 80)], -1).astype(
            np.uint8
        )
        rgb[box] = (200, 30, 30)
        depth = np.where(
            yy > height // 2, 1.55 * 1000 * (height / 2) / np.maximum(yy - height / 2, 1), 0
        )
        depth = np.where(box, 8000, np.minimum(depth, 60000)).astype(np.uint16)  # mm, 0 = sky
        event = np.full((height, width), 128, np.uint8)
        edge = box ^ np.roll(box, 2, axis=1)
        event[edge] = 131
        az = rng.uniform(-0.7, 0.7, points)
        el = rng.uniform(-0.25, 0.05, points)
        r = rng.uniform(4, 30, points)
        cloud = np.stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el) + 0.2,
                          rng.uniform(0, 1, points)], -1).astype(np.float32)  # fmt: skip
        frames.append({"rgb": rgb, "depth": depth, "event": event, "lidar": cloud})
    return frames


def bad_message(kind: str, header, width: int, height: int):
    """(topic, message) of a malformed (or edge-case) message of ``kind``."""
    good = build_image(np.zeros((height, width, 3), np.uint8), "rgb8")
    if kind == "rgb_encoding":
        return TOPICS["rgb"], Image(header=header, **{**good, "encoding": "yuv422"})
    if kind == "rgb_short":
        return TOPICS["rgb"], Image(header=header, **{**good, "data": good["data"][:-7]})
    if kind == "rgb_step":
        return TOPICS["rgb"], Image(header=header, **{**good, "step": width * 3 - 1})
    if kind == "depth_nonfinite":  # REP 118 invalid pixels: valid data, the node must cope
        d = np.full((height, width), np.nan, np.float32)
        d[:, : width // 2] = np.inf
        return TOPICS["depth"], Image(header=header, **build_image(d, "32FC1"))
    cloud = build_pointcloud(np.ones((10, 4), np.float32))
    fields = [PointField(**f._asdict()) for f in cloud.pop("fields")]
    if kind == "lidar_empty":
        return TOPICS["lidar"], PointCloud2(
            header=header, fields=fields, **{**cloud, "width": 0, "row_step": 0, "data": []}
        )
    if kind == "lidar_no_z":
        return TOPICS["lidar"], PointCloud2(
            header=header, fields=[f for f in fields if f.name != "z"], **cloud
        )
    if kind == "lidar_layout":
        fields[1].offset = 30  # beyond point_step
        return TOPICS["lidar"], PointCloud2(header=header, fields=fields, **cloud)
    raise ValueError(f"unknown bad message kind {kind!r}")


class Rig(Node):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("anyseg_test_rig")
        self.args = args
        self.width, self.height = args.width, args.height
        self.frames = make_frames(args.width, args.height, args.points)
        self.rates = {m: int(r) for m, r in (kv.split("=") for kv in args.rates.split(","))}
        self.enabled = dict.fromkeys(self.rates, True)
        self.pubs = {m: self.create_publisher(PointCloud2 if m == "lidar" else Image, TOPICS[m], qos_profile_sensor_data)
                     for m in self.rates}  # fmt: skip
        self.pub_info = self.create_publisher(
            CameraInfo, "rgb/camera_info", qos_profile_sensor_data
        )
        self.commands: queue.Queue[str] = queue.Queue()
        self.tick = 0
        self.rng = np.random.default_rng(1)
        f = args.width / 2.0  # 90 degree horizontal field of view
        self.camera_info = CameraInfo(width=args.width, height=args.height, distortion_model="plumb_bob", d=[0.0] * 5,
                                      k=[f, 0.0, args.width / 2, 0.0, f, args.height / 2, 0.0, 0.0, 1.0])  # fmt: skip
        self.create_subscription(Image, "segmentation/labels", self._on_labels, 10)
        self.create_subscription(
            String, "segmentation/info", lambda m: emit(ev="info", **json.loads(m.data)), 10
        )
        self.create_subscription(PointCloud2, "segmentation/points", self._on_points, 10)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.create_timer(1.0 / TICK_HZ, self._on_tick)
        threading.Thread(target=self._read_stdin, daemon=True).start()
        emit(ev="ready")

    def _read_stdin(self) -> None:
        for line in sys.stdin:
            self.commands.put(line.strip())
        self.commands.put("quit")

    def _header(self, stamp_ns: int, modality: str):
        from std_msgs.msg import Header

        sec, nsec = stamp_parts(stamp_ns)
        h = Header(frame_id=FRAME_IDS[modality])
        h.stamp.sec, h.stamp.nanosec = sec, nsec
        return h

    def _on_tick(self) -> None:
        while not self.commands.empty():
            self._command(self.commands.get())
        tick_ns = time.time_ns()  # sensors firing on the same tick share it (one device)
        frame = self.frames[self.tick % len(self.frames)]
        for m, hz in self.rates.items():
            if not self.enabled[m] or (self.tick % (TICK_HZ // hz)):
                continue
            stamp = tick_ns + int(self.rng.uniform(-1e6, 1e6))
            header = self._header(stamp, m)
            if m == "lidar":
                kw = build_pointcloud(frame["lidar"])
                fields = [PointField(**f._asdict()) for f in kw.pop("fields")]
                self.pubs[m].publish(PointCloud2(header=header, fields=fields, **kw))
            else:
                enc = {"rgb": "rgb8", "depth": "16UC1", "event": "mono8"}[m]
                self.pubs[m].publish(Image(header=header, **build_image(frame[m], enc)))
                if m == "rgb":
                    self.camera_info.header = header
                    self.pub_info.publish(self.camera_info)
            emit(ev="pub", m=m, stamp=stamp)
        self.tick += 1

    def _command(self, line: str) -> None:
        words = line.split()
        if not words:
            return
        if words[0] in ("stop", "start"):
            self.enabled[words[1]] = words[0] == "start"
        elif words[0] == "bad":
            topic, msg = bad_message(
                words[1], self._header(time.time_ns(), "rgb"), self.width, self.height
            )
            self.publishers_by_topic(topic).publish(msg)
        elif words[0] == "quit":
            raise SystemExit(0)
        emit(ev="ack", cmd=line)

    def publishers_by_topic(self, topic: str):
        return next(p for m, p in self.pubs.items() if TOPICS[m] == topic)

    def _on_labels(self, msg: Image) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        emit(ev="labels", stamp=stamp, frame_id=msg.header.frame_id, w=msg.width, h=msg.height,
             enc=msg.encoding, latency_ms=(time.time_ns() - stamp) / 1e6)  # fmt: skip

    def _on_points(self, msg: PointCloud2) -> None:
        emit(
            ev="points",
            frame_id=msg.header.frame_id,
            n=msg.width * msg.height,
            fields=[f.name for f in msg.fields],
        )

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        emit(ev="diag", status={s.name.split(": ")[-1]: {"level": s.level[0], "message": s.message,
                                                          **{kv.key: kv.value for kv in s.values}}
                                for s in msg.status})  # fmt: skip


class Listener(Node):
    """Reports each rgb/image message that arrives (stamp and size): the transport check."""

    def __init__(self) -> None:
        super().__init__("anyseg_test_listener")
        self.create_subscription(Image, "rgb/image", self._on_image, qos_profile_sensor_data)
        emit(ev="ready")

    def _on_image(self, msg: Image) -> None:
        emit(
            ev="image",
            stamp=msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec,
            bytes=len(msg.data),
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rates", default="rgb=15,depth=15,event=15,lidar=10")
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--points", type=int, default=3000)
    p.add_argument("--listen", action="store_true")
    args = p.parse_args()
    rclpy.init()
    node = Listener() if args.listen else Rig(args)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException, SystemExit):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
