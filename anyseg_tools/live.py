"""Live evaluation: the real node as a process, a bag replayed into it over DDS, its outputs
matched to the bag's ground truth as they arrive.

The evaluator runs in this process on its own rclpy context: a :class:`Replayer` publishes the
bag (stamps shifted onto the wall clock, ground truth with them) and a :class:`Monitor` subscribes
to segmentation/labels, segmentation/info and /diagnostics. Latency is measured where a user would:
header stamp -> labels received. With ``sim_time`` the node runs with ``use_sim_time`` and the
replay publishes /clock from the bag's time with the recorded stamps (latency is then measured
on the bag's clock). DDS settings come from the environment (the demo and the tests set
loopback-only ones, see :mod:`anyseg_tools.localdds`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from anyseg_model.metrics import miou
from anyseg_model.modalities import subset_name
from anyseg_ros.core.decode import decode_image, decode_labels, stamp_ns
from anyseg_ros.core.settings import check_names
from anyseg_ros.core.topics import DIAGNOSTICS_TOPIC, INPUT_TOPICS, OUTPUT_TOPICS, normalize

from .bag import BagContents, DropWindow
from .localdds import kill, start
from .params import write_params
from .replay import Replayer
from .report import outage_timeline
from .scoring import FrameResult, Scorer


@dataclass
class LiveRun:
    frames: list[FrameResult]
    scorer: Scorer
    dropped: int  # frame sets the node skipped while busy + frames it published that never arrived
    outages: dict[str, list[list[float]]]
    exit_code: int | None
    log_tail: str
    node_frames: int = 0


class NodeFailed(RuntimeError):
    """The node exited or never became ready; the message carries its last log lines."""


@dataclass
class Monitor:
    """Collects the node's outputs, scores them against ground truth as they come."""

    classes: Sequence[str]
    tolerance_ns: int
    keep_images: int = 4
    frames: list[FrameResult] = field(default_factory=list)
    health_events: list[tuple[int, str, str]] = field(
        default_factory=list
    )  # (wall ns, sensor, state)
    busy_drops: int = 0
    node_frames: int = 0
    anchor: str = ""
    sensors: dict[str, str] = field(default_factory=dict)
    clock: Callable[[], int | None] = time.time_ns  # the clock the stamps are on

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.scorer = Scorer(self.classes, self.tolerance_ns)
        self._info: dict[int, dict] = {}
        self._labels: dict[int, tuple[int, np.ndarray]] = {}
        self._images: dict[int, np.ndarray] = {}

    # -- callbacks (executor thread)
    def on_labels(self, msg) -> None:
        received = self.clock()
        with self.lock:
            labels = decode_labels(msg)
            self._labels[stamp_ns(msg.header)] = (received, labels)
            self._join()

    def on_info(self, msg) -> None:
        info = json.loads(msg.data)
        with self.lock:
            self._info[int(info["stamp_ns"])] = info
            self._join()

    def on_ground_truth(self, msg) -> None:
        labels = decode_labels(msg)
        with self.lock:
            self.scorer.add_ground_truth(stamp_ns(msg.header), labels)

    def on_image(self, msg) -> None:
        with self.lock:
            if (
                len(self.frames) < 50 and len(self._images) < 50
            ):  # overlays come from the first frames
                self._images[stamp_ns(msg.header)] = decode_image(
                    msg, allowed=("rgb8", "bgr8", "mono8")
                )

    def on_diagnostics(self, msg) -> None:
        now = time.time_ns()
        with self.lock:
            for st in msg.status:
                values = {kv.key: kv.value for kv in st.values}
                sensor = st.name.rsplit(": ", 1)[-1]
                if "state" in values and self.sensors.get(sensor) != values["state"]:
                    self.sensors[sensor] = values["state"]
                    self.health_events.append((now, sensor, values["state"]))
                if "frames_dropped_busy" in values:
                    self.busy_drops = int(values["frames_dropped_busy"])
                    self.node_frames = int(values["frames"])
                    self.anchor = values.get("anchor", "")

    def _join(self) -> None:
        """A frame is complete when both its labels and its info arrived (either order)."""
        for stamp in [s for s in self._labels if s in self._info]:
            received, labels = self._labels.pop(stamp)
            info = self._info.pop(stamp)
            mods = tuple(info["modalities"])
            image = self._images.pop(stamp, None) if len(self.frames) < self.keep_images else None
            f = FrameResult(
                stamp,
                info["anchor"],
                mods,
                labels,
                None if received is None else (received - stamp) / 1e6,
                info["processing_ms"],
                image,
            )
            self.frames.append(f)
            self.scorer.add_frame(f)

    def status_line(self, t_s: float) -> str:
        with self.lock:
            sensors = " ".join(
                f"{m}:{'on' if self.sensors.get(m) == 'alive' else self.sensors.get(m, '-')}"
                for m in INPUT_TOPICS
            )
            recent = [f.latency_ms for f in self.frames[-20:] if f.latency_ms is not None]
            last = subset_name(self.frames[-1].modalities) if self.frames else "-"
            scores = self.scorer.scores
            d = scores.to_dict()
            running = miou(sum(scores.conf.values())) * 100 if scores.conf else float("nan")
        lat = f"{np.median(recent):.0f} ms" if recent else "-"
        return (
            f"[{t_s:5.1f} s] {sensors} | anchor {self.anchor or '-'} | last {last} "
            f"| frames {len(self.frames)} | latency p50 {lat} | mIoU running {running:.1f} "
            f"(mean over subsets {d['mean_miou']})"
        )


def run_live(
    bag: BagContents,
    values: Mapping[str, Any],
    modalities: Sequence[str],
    drops: Sequence[DropWindow],
    rate: float,
    labels_topic: str,
    classes: Sequence[str],
    tolerance_ns: int = 30_000_000,
    on_line: Callable[[str], None] = print,
    startup_timeout_s: float = 120.0,
    sim_time: bool = False,
) -> LiveRun:
    """Start the node with parameter ``values`` (``modalities`` enabled), replay ``bag`` into it
    and collect its outputs (``sim_time``: the node on the bag's /clock)."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    workdir = Path(tempfile.mkdtemp(prefix="anyseg_live_"))
    check_names(values)
    # use_sim_time is rclpy's own parameter, not one of the table's
    params = write_params(workdir / "params.yaml", {**values, "use_sim_time": sim_time})
    log = (workdir / "node.log").open("wb")
    proc = start(
        [sys.executable, "-m", "anyseg_ros.node", "--ros-args", "--params-file", str(params)],
        env=os.environ,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    monitor = Monitor(classes, tolerance_ns)
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    executor = SingleThreadedExecutor(context=ctx)
    spinner: threading.Thread | None = None
    wall0 = time.time_ns()
    try:
        node = rclpy.create_node("anyseg_live_evaluator", context=ctx)
        reliable = QoSProfile(depth=50)
        node.create_subscription(Image, OUTPUT_TOPICS["labels"], monitor.on_labels, reliable)
        node.create_subscription(String, OUTPUT_TOPICS["info"], monitor.on_info, reliable)
        node.create_subscription(
            DiagnosticArray, DIAGNOSTICS_TOPIC, monitor.on_diagnostics, reliable
        )
        node.create_subscription(Image, labels_topic, monitor.on_ground_truth, reliable)
        node.create_subscription(
            Image, INPUT_TOPICS["rgb"], monitor.on_image, qos_profile_sensor_data
        )
        replayer = Replayer(node, bag, rate=rate, drops=drops, clock=sim_time)
        if sim_time:
            monitor.clock = replayer.bag_now_ns
        executor.add_node(node)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()

        # Ready = the node subscribes to every enabled input the bag carries (after its warm-up).
        inputs = [
            normalize(INPUT_TOPICS[m])
            for m in modalities
            if normalize(INPUT_TOPICS[m]) in bag.topics()
        ]
        deadline = time.monotonic() + startup_timeout_s
        while not all(node.count_subscribers(t) for t in inputs) or not node.count_publishers(
            OUTPUT_TOPICS["labels"]
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise NodeFailed(
                    f"the node {'exited' if proc.poll() is not None else 'did not start'}: "
                    f"{_tail(workdir / 'node.log')}"
                )
            time.sleep(0.1)
        time.sleep(0.5)  # let discovery settle both ways before the first message

        next_line = [time.monotonic() + 1.0]
        wall0 = time.time_ns()  # replay time 0: health events are placed on the bag's time line

        def tick(t_bag: float) -> None:
            if time.monotonic() >= next_line[0]:
                next_line[0] += 1.0
                on_line(monitor.status_line(t_bag))
            if proc.poll() is not None:
                raise NodeFailed(
                    f"the node exited during the replay: {_tail(workdir / 'node.log')}"
                )

        replayer.run(on_tick=tick)
        # Drain: wait until outputs stop coming (the last frames are still being segmented).
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 1.5 and proc.poll() is None:
            with monitor.lock:
                n = len(monitor.frames)
            if n != last:
                last, quiet_since = n, time.monotonic()
            time.sleep(0.1)
        on_line(monitor.status_line(replayer.duration_s))
    finally:
        exit_code = kill(proc, grace_s=10.0, first=signal.SIGINT)
        executor.shutdown()
        rclpy.try_shutdown(context=ctx)
        if spinner is not None:
            # A thread still inside rcl's wait when the interpreter exits aborts the process
            # ("terminate called without an active exception"): let it leave first.
            spinner.join(timeout=5.0)
        log.close()
    scorer = monitor.scorer
    scorer.finish()
    # Back onto the bag's own stamps, so live frames compare with offline ones.
    for f in monitor.frames:
        f.stamp_ns = replayer.to_bag_stamp(f.stamp_ns)
    scorer.per_frame = {replayer.to_bag_stamp(s): v for s, v in scorer.per_frame.items()}
    bag_s = bag.records[-1].log_ns * 1e-9 - bag.records[0].log_ns * 1e-9 if bag.records else 0.0
    events = [((t - wall0) * 1e-9 * rate, m, state) for t, m, state in monitor.health_events]
    lost = max(0, monitor.node_frames - len(monitor.frames))
    return LiveRun(
        monitor.frames,
        scorer,
        monitor.busy_drops + lost,
        outage_timeline(events, bag_s),
        exit_code,
        _tail(workdir / "node.log"),
        monitor.node_frames,
    )


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""
