"""The segmentation itself, shared by the plain node and the managed (lifecycle) node.

:class:`Segmentation` owns settings -> segmentor -> pipeline -> synchroniser -> worker on an
rclpy node, in the lifecycle's steps: :meth:`configure` loads, checks and warms up the model and
creates the publishers; :meth:`activate` subscribes, starts the timers and the worker;
:meth:`deactivate` stops consuming and publishing but keeps the model; :meth:`cleanup` frees the
model. The plain node runs configure + activate at start-up (docs/architecture.md section 2).

Callbacks only decode and push into the synchroniser; complete-enough frame sets go through a
single-slot mailbox to a worker thread that runs the model and publishes. Timers run on the
steady clock: with ``use_sim_time`` and no /clock yet the ROS clock reads 0 and its timers never
fire, yet /diagnostics must still say what is going on (sensor messages are held back, counted,
until the clock runs).
"""

from __future__ import annotations

import gc
import json
import threading
import time
from functools import partial
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String

from anyseg_model import CheckpointError, Segmentor, lidar_kernel

from . import messages
from .core.decode import DecodeError
from .core.mailbox import Mailbox, MailboxClosed
from .core.settings import Settings
from .core.sync import FrameSet
from .core.topics import DIAGNOSTICS_TOPIC, OUTPUT_TOPICS
from .diagnostics import FAILING_AFTER, ClockState, FrameStats, Status, statuses
from .pipeline import (
    Pipeline,
    StartupError,
    check_segmentor,
    lidar_max_intensity,
    sync_parameters,
    synchronizer,
)
from .subscriptions import subscribe

POLL_PERIOD_S = 0.01  # how often waits are checked for expiry and sensors for staleness
DIAGNOSTICS_PERIOD_S = 0.5  # plus immediately on every sensor or anchor change


class Segmentation:
    """Settings -> segmentor -> pipeline -> synchroniser -> worker -> publishers on ``node``.

    ``lifecycle``: publishers are lifecycle publishers (they publish only while the managed node
    is active)."""

    def __init__(self, node: Node, lifecycle: bool = False) -> None:
        self.node, self.lifecycle = node, lifecycle
        self.settings: Settings | None = None
        self.segmentor: Any = None
        self.pipeline: Pipeline | None = None
        self.active = False
        self.clock = ClockState()
        self.topics: dict[str, str] = {}
        self._pubs: dict[str, Any] = {}
        self._subs: list[Any] = []
        self._timers: list[Any] = []
        self._worker: threading.Thread | None = None
        self._logged: set[str] = set()
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)

    @property
    def configured(self) -> bool:
        return self.segmentor is not None

    # ------------------------------------------------------------------ lifecycle steps

    def configure(self, settings: Settings, segmentor: Any = None) -> None:
        """Load (unless ``segmentor`` is given), check and warm up the model; create the
        publishers. Raises StartupError."""
        if segmentor is None:
            try:
                segmentor = Segmentor.from_checkpoint(
                    settings.checkpoint,
                    settings.device,
                    backend=settings.backend,
                    onnx_dir=settings.onnx_dir or None,
                    threads=settings.threads,
                )
            except (CheckpointError, ValueError, OSError) as e:
                raise StartupError(str(e)) from None
        palette = check_segmentor(settings, segmentor)
        segmentor.warmup()
        self.settings, self.segmentor = settings, segmentor
        self.pipeline = Pipeline(
            settings.inputs, palette, model_max_intensity=lidar_max_intensity(segmentor)
        )
        self.sync = synchronizer(settings.sync)
        self.stats = FrameStats()
        create = self.node.create_lifecycle_publisher if self.lifecycle else None
        create = create or self.node.create_publisher
        self._pubs = {
            "labels": create(Image, OUTPUT_TOPICS["labels"], 10),
            "color": create(Image, OUTPUT_TOPICS["color"], 10),
            "camera_info": create(CameraInfo, OUTPUT_TOPICS["camera_info"], 10),
            "points": create(PointCloud2, OUTPUT_TOPICS["points"], 10),
            "info": create(String, OUTPUT_TOPICS["info"], 10),
            "diagnostics": create(DiagnosticArray, DIAGNOSTICS_TOPIC, 10),
        }

    def activate(self) -> None:
        """Subscribe, start the timers and the worker. The synchroniser starts afresh (sensors
        offline until heard from): what it knew before a deactivation is out of date."""
        self.sync = synchronizer(self.settings.sync)
        self.mailbox: Mailbox[FrameSet] = Mailbox()
        self._worker = threading.Thread(target=self._work, name="anyseg_inference", daemon=True)
        self._worker.start()
        self._create_subscriptions()
        self._timers = [
            self.node.create_timer(POLL_PERIOD_S, self._poll, clock=self._steady),
            self.node.create_timer(
                DIAGNOSTICS_PERIOD_S, self._on_diagnostics_timer, clock=self._steady
            ),
        ]
        self.active = True

    def deactivate(self) -> None:
        """Stop consuming and publishing; the model and the synchroniser's state are kept."""
        self.active = False
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        for timer in self._timers:
            self.node.destroy_timer(timer)
        self._subs, self._timers = [], []
        if self._worker is not None:
            self.mailbox.close()
            self._worker.join(timeout=5.0)
            self._worker = None

    def cleanup(self) -> None:
        """Deactivate if needed, destroy the publishers and free the model (and GPU memory)."""
        if self.active:
            self.deactivate()
        destroy = self.node.destroy_lifecycle_publisher if self.lifecycle else None
        destroy = destroy or self.node.destroy_publisher
        for pub in self._pubs.values():
            destroy(pub)
        self._pubs = {}
        cuda = self.segmentor is not None and str(self.segmentor.device).startswith("cuda")
        self.segmentor = self.pipeline = self.settings = None
        gc.collect()
        if cuda:
            import torch

            torch.cuda.empty_cache()

    def describe(self) -> str:
        """One line for the log: what is segmented with what, on what, from which inputs."""
        s, seg = self.settings, self.segmentor
        inputs = ", ".join(f"{k} {v}" for k, v in self._input_status())
        return (
            f"segmenting {'+'.join(s.modalities)} with {s.checkpoint} on {seg.device} "
            f"({s.backend}, {seg.threads} threads; {len(seg.classes)} classes); "
            f"anchor priority {'>'.join(s.sync.anchor_priority)}; inputs {inputs}"
        )

    def check(self, settings: Settings) -> None:
        """Checks of new settings that need the model (palette length); raises StartupError."""
        if self.configured:
            check_segmentor(settings, self.segmentor)

    def apply(self, settings: Settings) -> None:
        """A validated runtime parameter change, effective from the next frame set; the
        synchroniser keeps its buffers, health and clocks."""
        if not self.configured:
            return
        palette = check_segmentor(settings, self.segmentor)
        self.sync.configure(**sync_parameters(settings.sync))
        self.pipeline.settings = settings.inputs
        self.pipeline.palette = np.asarray(palette, np.uint8)
        self.settings = settings

    # ------------------------------------------------------------------ callbacks (decode + push)

    def _create_subscriptions(self) -> None:
        """Every input subscription (sensors in their transports, each camera's camera_info,
        tf): :func:`~anyseg_ros.subscriptions.subscribe`."""
        s = self.settings
        self.topics, self._subs, self._camera_info = subscribe(
            self.node, self.pipeline, s.modalities, self._on_sensor, self._on_camera_info
        )
        self._latched: set[str] = set()
        self._watch_latched_camera_info()

    def _watch_latched_camera_info(self) -> None:
        """camera_info: best effort + volatile matches every publisher but gets only new
        messages; a camera_info published once and latched (transient_local) needs a
        transient_local subscription, which in turn is incompatible with volatile publishers (a
        warning in the driver's log). So that one is added only once such a publisher shows up."""
        for m, topic in self._camera_info.items():
            if m in self._latched:
                continue
            for pub in self.node.get_publishers_info_by_topic(topic):
                if pub.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL:
                    qos = QoSProfile(
                        depth=1,
                        reliability=pub.qos_profile.reliability,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL,
                    )
                    quiet = SubscriptionEventCallbacks(incompatible_qos=lambda event: None)
                    self._subs.append(
                        self.node.create_subscription(
                            CameraInfo,
                            topic,
                            partial(self._on_camera_info, m),
                            qos,
                            event_callbacks=quiet,
                        )
                    )
                    self._latched.add(m)
                    break

    def _now(self) -> int:
        return self.node.get_clock().now().nanoseconds

    def _on_sensor(self, modality: str, msg: Any) -> None:
        now = self._now()
        if now == 0:  # use_sim_time before the first /clock: stamps cannot be judged yet
            self.clock.held_back += 1
            self._clock_not_running()
            return
        try:
            decoded = self.pipeline.decode(modality, msg)
        except DecodeError as e:
            if self.pipeline.count(f"{modality}/{e.reason}"):
                self.node.get_logger().warning(
                    f"{self.topics[modality]}: dropped a malformed message ({e}); "
                    "further ones are counted in /diagnostics"
                )
            return
        if decoded is not None:  # None: an event packet inside the current slice of the stream
            self._deliver(self.sync.push(modality, *decoded, now))

    def _on_camera_info(self, modality: str, msg: CameraInfo) -> None:
        try:
            self.pipeline.set_camera_info(msg, modality)
        except DecodeError as e:
            if self.pipeline.count(f"camera_info/{e.reason}"):
                self.node.get_logger().warning(
                    f"{self._camera_info[modality]}: unusable camera_info ({e}); "
                    "counted in /diagnostics"
                )

    def _poll(self) -> None:
        now = self._now()
        if now != 0:
            self._deliver(self.sync.poll(now))
        for line in self.pipeline.take_notes():  # input refusals and assumptions, once each
            self.node.get_logger().warning(line)

    def _deliver(self, sets: list[FrameSet]) -> None:
        for fs in sets:  # the worker takes the newest; older waiting ones are dropped and counted
            self.mailbox.put(fs)
        events = self.sync.events()
        for e in events:  # each change once; rclpy wants one severity per call site
            if e.degraded:
                self.node.get_logger().warning(str(e))
            else:
                self.node.get_logger().info(str(e))
        if events:
            self._publish_diagnostics()

    def _clock_not_running(self) -> None:
        if "clock" not in self._logged:
            self._logged.add("clock")
            self.node.get_logger().warning(
                "the ROS clock reads 0 (use_sim_time is true and nothing on /clock yet): sensor "
                "messages are held back until it runs; /diagnostics reports it meanwhile"
            )

    # ------------------------------------------------------------------ worker (infer + publish)

    def _work(self) -> None:
        mailbox = self.mailbox
        while True:
            try:
                fs = mailbox.get(timeout=0.5)
            except MailboxClosed:
                return
            if fs is None or not self.active:
                continue
            try:
                self._segment(fs)
            except Exception as e:  # keep segmenting (MemoryError too); count and say it once
                failing = self.stats.failed(e)
                if not self.active:
                    continue
                kind = type(e).__name__
                if kind not in self._logged:
                    self._logged.add(kind)
                    self.node.get_logger().error(f"frame {fs.stamp_ns} failed: {kind}: {e}")
                if failing == FAILING_AFTER:
                    self.node.get_logger().error(
                        f"inference keeps failing ({failing} frames in a row): {kind}: {e}"
                    )

    def _segment(self, fs: FrameSet) -> None:
        t0 = time.perf_counter()
        arrays = self.pipeline.arrays(fs)
        if not arrays:
            return
        pred = self.segmentor.predict(arrays)
        color = self._pubs["color"]
        want_color = self.settings.publish_color and color.get_subscription_count() > 0
        out = self.pipeline.outputs(fs, arrays, pred.labels, want_color)
        header = messages.header(fs.stamp_ns, out.camera.frame_id)
        self._pubs["labels"].publish(messages.image(header, out.labels))
        latency_ms = (self._now() - fs.stamp_ns) / 1e6
        self._pubs["camera_info"].publish(messages.camera_info(header, out.camera))
        if out.color is not None:
            color.publish(messages.image(header, out.color))
        if out.points is not None:
            lidar_header = fs.payload("lidar").header
            self._pubs["points"].publish(messages.pointcloud(lidar_header, out.points))
        processing_ms = (time.perf_counter() - t0) * 1e3
        info = {
            **out.info,
            "latency_ms": round(latency_ms, 2),
            "processing_ms": round(processing_ms, 2),
        }
        self._pubs["info"].publish(String(data=json.dumps(info)))
        self.stats.record(fs.anchor, tuple(arrays), latency_ms, processing_ms)

    # ------------------------------------------------------------------ diagnostics

    def _on_diagnostics_timer(self) -> None:
        self._watch_latched_camera_info()
        self._publish_diagnostics()

    def statuses(self) -> list[Status]:
        """What /diagnostics says now."""
        now = self._now()
        self.clock.running = now != 0
        if not self.clock.running:
            self._clock_not_running()
        sts = statuses(
            self.node.get_name(),
            self.sync,
            now,
            self.topics,
            self.pipeline.error_counts(),
            self.stats,
            self.mailbox.dropped,
            str(self.segmentor.device),
            self.clock,
        )
        sts[-1].values += self._input_status()
        return sts

    def _input_status(self) -> list[tuple[str, str]]:
        """The pipeline's input status, and how the LiDAR is projected on the CPU."""
        out = self.pipeline.input_status()
        if "lidar" in self.settings.modalities and self.segmentor.device.type == "cpu":
            compiled = lidar_kernel.available()
            out.append(("lidar_projection", "compiled" if compiled else "torch (no numba)"))
        return out

    def _publish_diagnostics(self) -> None:
        sts = self.statuses()
        stamp = self.node.get_clock().now().to_msg()
        self._pubs["diagnostics"].publish(messages.diagnostic_array(sts, stamp))
