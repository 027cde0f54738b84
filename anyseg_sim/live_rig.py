"""The synthetic world as live sensor topics: a stand-in rig for the node's tests and benchmarks.

    python -m anyseg_sim.live_rig [--rates rgb=15,depth=15,event=15,lidar=10] [--width 160]
        [--camera-info frame|latched] [--ros-args -r __ns:=/robot1]


Publishes rgb/image (+ rgb/camera_info), depth/image, event/image and lidar/points like one
synchronised device: a 30 Hz tick, each sensor on the ticks that give its rate, stamped with the
tick time plus a little jitter. camera_info goes out with every RGB frame (best effort), or
with ``--camera-info latched`` once, reliable and transient_local, as calibration publishers do.
Subscribes to the node's outputs and prints one JSON line per event on stdout; reads commands on
stdin:

    stop <modality> | start <modality> | bad <kind> | quit

The sensor data are frames of the synthetic world (seed 0), rendered once at start-up and
cycled: rgb8, depth as 16UC1 millimetres, the event frame as mono8 and the LiDAR cloud (x, y, z,
intensity) with the world's camera_info; the node's lidar_extrinsic must be the world rig's
(:func:`anyseg_sim.rig.lidar_extrinsic`). ``--compressed`` publishes RGB as jpeg on
rgb/image/compressed and depth as png on depth/image/compressedDepth instead (image_transport's
topics and formats). ``--listen`` makes it a pure subscriber that reports
what arrives on rgb/image (the transport test). It needs rclpy (the rest of anyseg_sim does not).
"""

from __future__ import annotations

import argparse
import array
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
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import String

from anyseg_ros.core.decode import build_image, build_pointcloud, stamp_parts
from anyseg_ros.core.topics import (
    CAMERA_INFO_TOPIC,
    DIAGNOSTICS_TOPIC,
    OUTPUT_TOPICS,
    transport_topic,
)
from anyseg_ros.core.topics import INPUT_TOPICS as TOPICS

from .config import WorldConfig
from .world import SyntheticWorld

TICK_HZ = 30
# The world renders depth and events on the colour camera's grid, so they go out as a driver's
# registered (aligned) images do: in the colour camera's optical frame.
FRAME_IDS = {
    "rgb": "camera_rgb",
    "depth": "camera_rgb",
    "event": "camera_rgb",
    "lidar": "lidar",
}


def emit(**kw) -> None:
    kw.setdefault("t", time.monotonic())
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def make_frames(width: int, height: int, n: int = 8) -> tuple[list[dict[str, np.ndarray]], object]:
    """``n`` frames of the synthetic world and its camera info."""
    world = SyntheticWorld(WorldConfig(width=width, height=height, seed=0))
    frames = []
    for k in range(n):
        f = world.frame(k)
        frames.append({"rgb": f.rgb, "depth": f.depth_mm(), "event": f.event, "lidar": f.lidar})
    return frames, world.camera_info


def _message_kwargs(frame: dict[str, np.ndarray]) -> dict[str, dict]:
    """Constructor kwargs (all but the header) of each sensor's message for one frame."""
    out = {
        m: build_image(frame[m], enc)
        for m, enc in (("rgb", "rgb8"), ("depth", "16UC1"), ("event", "mono8"))
    }
    cloud = build_pointcloud(frame["lidar"])
    out["lidar"] = {**cloud, "fields": [PointField(**f._asdict()) for f in cloud["fields"]]}
    return out


def bad_message(kind: str, header, width: int, height: int):
    """(topic, message) of a malformed (or edge-case) message of ``kind``."""
    good = build_image(np.zeros((height, width, 3), np.uint8), "rgb8")
    if kind == "rgb_encoding":
        return TOPICS["rgb"], Image(header=header, **{**good, "encoding": "bayer_rggb16"})
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


def _compressed_kwargs(frame: dict[str, np.ndarray]) -> dict[str, dict]:
    """CompressedImage kwargs (all but the header) of the RGB (jpeg) and depth (png) images."""
    from anyseg_ros.transport import encode_compressed, encode_compressed_depth

    out = {}
    for m, (fmt, data) in (
        ("rgb", encode_compressed(frame["rgb"], "jpeg")),
        ("depth", encode_compressed_depth(frame["depth"], "png", depth_max=65.535)),
    ):
        buf = array.array("B")
        buf.frombytes(data)
        out[m] = {"format": fmt, "data": buf}
    return out


class Rig(Node):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__("anyseg_test_rig")
        self.args = args
        self.width, self.height = args.width, args.height
        frames, cam = make_frames(args.width, args.height)
        self.frames = [_message_kwargs(f) for f in frames]  # built once: the rig should be cheap
        self.rates = {m: int(r) for m, r in (kv.split("=") for kv in args.rates.split(","))}
        self.enabled = dict.fromkeys(self.rates, True)
        self.compressed = {"rgb", "depth"} if args.compressed else set()
        if self.compressed:
            self.frames = [
                {**k, **_compressed_kwargs(f)} for k, f in zip(self.frames, frames, strict=True)
            ]
        self.pubs = {m: self._publisher(m) for m in self.rates}
        self.latched = args.camera_info == "latched"
        info_qos = (
            QoSProfile(
                depth=1,
                reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.TRANSIENT_LOCAL,
            )
            if self.latched
            else qos_profile_sensor_data
        )
        self.pub_info = self.create_publisher(CameraInfo, CAMERA_INFO_TOPIC, info_qos)
        self.commands: queue.Queue[str] = queue.Queue()
        self.tick = 0
        self.rng = np.random.default_rng(1)
        self.camera_info = CameraInfo(
            width=cam.width,
            height=cam.height,
            distortion_model=cam.distortion_model,
            k=cam.K.reshape(-1).tolist(),
            d=cam.D.tolist(),
            p=cam.P.reshape(-1).tolist(),
        )
        if self.latched:
            self.camera_info.header = self._header(time.time_ns(), "rgb")
            self.pub_info.publish(self.camera_info)  # once, before the node may even exist
        self.create_subscription(Image, OUTPUT_TOPICS["labels"], self._on_labels, 10)
        self.create_subscription(
            String, OUTPUT_TOPICS["info"], lambda m: emit(ev="info", **json.loads(m.data)), 10
        )
        self.create_subscription(PointCloud2, OUTPUT_TOPICS["points"], self._on_points, 10)
        self.create_subscription(
            CameraInfo, OUTPUT_TOPICS["camera_info"], self._on_output_camera, 10
        )
        self.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics, 10)
        self.create_timer(1.0 / TICK_HZ, self._on_tick)
        threading.Thread(target=self._read_stdin, daemon=True).start()
        emit(ev="ready")

    def _publisher(self, m: str):
        if m in self.compressed:
            tr = "compressed" if m == "rgb" else "compressedDepth"
            topic = transport_topic(m, tr)
            return self.create_publisher(CompressedImage, topic, qos_profile_sensor_data)
        kind = PointCloud2 if m == "lidar" else Image
        return self.create_publisher(kind, TOPICS[m], qos_profile_sensor_data)

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
            if m in self.compressed:
                self.pubs[m].publish(CompressedImage(header=header, **frame[m]))
            elif m == "lidar":
                self.pubs[m].publish(PointCloud2(header=header, **frame[m]))
            else:
                self.pubs[m].publish(Image(header=header, **frame[m]))
                if m == "rgb" and not self.latched:
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
        emit(
            ev="labels",
            stamp=stamp,
            frame_id=msg.header.frame_id,
            w=msg.width,
            h=msg.height,
            enc=msg.encoding,
            latency_ms=(time.time_ns() - stamp) / 1e6,
        )

    def _on_output_camera(self, msg: CameraInfo) -> None:
        emit(
            ev="camera_info",
            stamp=msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec,
            frame_id=msg.header.frame_id,
            w=msg.width,
            h=msg.height,
            k=list(msg.k),
        )

    def _on_points(self, msg: PointCloud2) -> None:
        emit(
            ev="points",
            frame_id=msg.header.frame_id,
            n=msg.width * msg.height,
            fields=[f.name for f in msg.fields],
        )

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        emit(
            ev="diag",
            status={
                s.name.split(": ")[-1]: {
                    "level": s.level[0],
                    "message": s.message,
                    **{kv.key: kv.value for kv in s.values},
                }
                for s in msg.status
            },
        )


class Listener(Node):
    """Reports each rgb/image message that arrives (stamp and size): the transport check."""

    def __init__(self) -> None:
        super().__init__("anyseg_test_listener")
        self.create_subscription(Image, TOPICS["rgb"], self._on_image, qos_profile_sensor_data)
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
    p.add_argument("--listen", action="store_true")
    p.add_argument("--compressed", action="store_true", help="rgb jpeg, depth compressedDepth")
    p.add_argument("--camera-info", choices=("frame", "latched"), default="frame")
    args = p.parse_args(remove_ros_args(sys.argv)[1:])
    rclpy.init()  # takes the --ros-args (a namespace) from sys.argv
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
