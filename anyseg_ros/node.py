"""anyseg_node: anymodal semantic segmentation that keeps going when sensors drop out.

Thin rclpy wiring: parameters (declared once from core.settings.PARAMETERS) -> validated Settings
-> checkpoint loaded, checked and warmed up -> subscriptions. Callbacks only decode and push into
the synchroniser; complete-enough frame sets go through a single-slot mailbox to a worker thread
that runs the model and publishes. Any startup failure is one line on stderr and exit code 2.

    anyseg_node --ros-args --params-file config/segment.yaml
    ros2 launch anyseg_ros segment.launch.py
"""

from __future__ import annotations

import array
import json
import sys
import threading
import time
from typing import Any

import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import String

from anyseg_model import CheckpointError, Segmentor

from . import messages
from .core.decode import DecodeError
from .core.mailbox import Mailbox, MailboxClosed
from .core.settings import PARAMETERS, Settings, SettingsError
from .core.sync import FrameSet
from .core.topics import CAMERA_INFO_TOPICS, DIAGNOSTICS_TOPIC, OUTPUT_TOPICS
from .diagnostics import FrameStats, statuses
from .pipeline import (
    Pipeline,
    StartupError,
    check_segmentor,
    lidar_max_intensity,
    synchronizer,
)
from .subscriptions import subscribe, tf_available

POLL_PERIOD_S = 0.01  # how often waits are checked for expiry and sensors for staleness
DIAGNOSTICS_PERIOD_S = 0.5  # plus immediately on every sensor or anchor change


def _read_yaml(path: str) -> Any:
    with open(path) as f:
        return yaml.safe_load(f)


def declare_parameters(node: Node) -> dict[str, Any]:
    """Declare every parameter of the table (with its description) and return the values.

    Dynamic typing lets ``slop_ms: 15`` (an int) reach Settings, which checks every type itself
    and names the parameter when one is wrong."""
    values = {}
    for p in PARAMETERS:
        desc = ParameterDescriptor(
            description=p.description, additional_constraints=f"type: {p.type}", dynamic_typing=True
        )
        value = node.declare_parameter(p.name, p.default, desc).value
        values[p.name] = list(value) if isinstance(value, (array.array, tuple)) else value
    return values


class SegmentationNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("anyseg_node", **kwargs)
        self.settings = s = Settings.from_parameters(
            declare_parameters(self), read_yaml=_read_yaml, tf_available=tf_available()
        )
        try:
            self.segmentor = Segmentor.from_checkpoint(
                s.checkpoint,
                s.device,
                backend=s.backend,
                onnx_dir=s.onnx_dir or None,
                threads=s.threads,
            )
        except (CheckpointError, ValueError, OSError) as e:
            raise StartupError(str(e)) from None
        self.pipeline = Pipeline(
            s.inputs,
            check_segmentor(s, self.segmentor),
            model_max_intensity=lidar_max_intensity(self.segmentor),
        )
        self.segmentor.warmup()
        self.sync = synchronizer(s.sync)
        self.mailbox: Mailbox[FrameSet] = Mailbox()
        self.stats = FrameStats()
        self._closing = False
        self._logged: set[str] = set()

        self.pub_labels = self.create_publisher(Image, OUTPUT_TOPICS["labels"], 10)
        self.pub_color = self.create_publisher(Image, OUTPUT_TOPICS["color"], 10)
        self.pub_points = self.create_publisher(PointCloud2, OUTPUT_TOPICS["points"], 10)
        self.pub_info = self.create_publisher(String, OUTPUT_TOPICS["info"], 10)
        self.pub_diag = self.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self.worker = threading.Thread(target=self._work, name="anyseg_inference", daemon=True)
        self.worker.start()

        self.topics = subscribe(self, self.pipeline, s.modalities, self._on_sensor, self._on_info)
        self.create_timer(POLL_PERIOD_S, self._poll)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.get_logger().info(
            f"segmenting {'+'.join(s.modalities)} with {s.checkpoint} on {self.segmentor.device} "
            f"({s.backend}, {self.segmentor.threads} threads) "
            f"({len(self.segmentor.classes)} classes); "
            f"anchor priority {'>'.join(s.sync.anchor_priority)}; inputs "
            + ", ".join(f"{k} {v}" for k, v in self.pipeline.input_status())
        )

    # ------------------------------------------------------------------ callbacks (decode + push)

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_sensor(self, modality: str, msg: Any) -> None:
        try:
            decoded = self.pipeline.decode(modality, msg)
        except DecodeError as e:
            if self.pipeline.count(f"{modality}/{e.reason}"):
                self.get_logger().warning(
                    f"{self.topics[modality]}: dropped a malformed message ({e}); "
                    "further ones are counted in /diagnostics"
                )
            return
        if decoded is not None:  # None: an event packet inside the current slice of the stream
            self._deliver(self.sync.push(modality, *decoded, self._now()))

    def _on_info(self, modality: str, msg: Any) -> None:
        try:
            self.pipeline.set_camera_info(msg, modality)
        except DecodeError as e:
            if self.pipeline.count(f"camera_info/{e.reason}"):
                self.get_logger().warning(
                    f"{CAMERA_INFO_TOPICS[modality]}: unusable camera_info ({e}); "
                    "counted in /diagnostics"
                )

    def _poll(self) -> None:
        self._deliver(self.sync.poll(self._now()))
        for line in self.pipeline.take_notes():  # input refusals and assumptions, once each
            self.get_logger().warning(line)

    def _deliver(self, sets: list[FrameSet]) -> None:
        for fs in sets:  # the worker takes the newest; older waiting ones are dropped and counted
            self.mailbox.put(fs)
        events = self.sync.events()
        for e in events:  # each change once; rclpy wants one severity per call site
            if e.degraded:
                self.get_logger().warning(str(e))
            else:
                self.get_logger().info(str(e))
        if events:
            self._publish_diagnostics()

    # ------------------------------------------------------------------ worker (infer + publish)

    def _work(self) -> None:
        while True:
            try:
                fs = self.mailbox.get(timeout=0.5)
            except MailboxClosed:
                return
            if fs is None or self._closing:
                continue
            try:
                self._segment(fs)
            except Exception as e:  # keep segmenting; count it and say it once per kind
                with self.stats.lock:
                    self.stats.inference_errors += 1
                if not self._closing and type(e).__name__ not in self._logged:
                    self._logged.add(type(e).__name__)
                    self.get_logger().error(f"frame {fs.stamp_ns} failed: {type(e).__name__}: {e}")

    def _segment(self, fs: FrameSet) -> None:
        t0 = time.perf_counter()
        arrays = self.pipeline.arrays(fs)
        if not arrays:
            return
        pred = self.segmentor.predict(arrays)
        want_color = self.settings.publish_color and self.pub_color.get_subscription_count() > 0
        out = self.pipeline.outputs(fs, arrays, pred.labels, want_color)
        header = fs.payload(fs.anchor).header
        self.pub_labels.publish(messages.image(header, out.labels))
        latency_ms = (self._now() - fs.stamp_ns) / 1e6
        if out.color is not None:
            self.pub_color.publish(messages.image(header, out.color))
        if out.points is not None:
            self.pub_points.publish(messages.pointcloud(fs.payload("lidar").header, out.points))
        processing_ms = (time.perf_counter() - t0) * 1e3
        info = {
            **out.info,
            "latency_ms": round(latency_ms, 2),
            "processing_ms": round(processing_ms, 2),
        }
        self.pub_info.publish(String(data=json.dumps(info)))
        self.stats.record(fs.anchor, tuple(arrays), latency_ms, processing_ms)

    # ------------------------------------------------------------------ diagnostics and shutdown

    def _publish_diagnostics(self) -> None:
        sts = statuses(
            self.get_name(),
            self.sync,
            self._now(),
            self.topics,
            self.pipeline.error_counts(),
            self.stats,
            self.mailbox.dropped,
            str(self.segmentor.device),
        )
        sts[-1].values += self.pipeline.input_status()
        self.pub_diag.publish(messages.diagnostic_array(sts, self.get_clock().now().to_msg()))

    def close(self) -> None:
        self._closing = True
        self.mailbox.close()
        self.worker.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    """Console script ``anyseg_node``: exit 0 on shutdown, 2 with one line on a startup error."""
    try:
        rclpy.init(args=args)
    except Exception as e:  # e.g. an unparsable --params-file
        print(f"anyseg_node: error: {str(e).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    node = None
    try:
        node = SegmentationNode()
        rclpy.spin(node)
    except (SettingsError, StartupError) as e:
        print(f"anyseg_node: error: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
