"""/diagnostics content for the node as plain data (the node turns it into DiagnosticStatus).

One status per sensor (state, age, rate, clock offset, decode errors) and one for the pipeline
(anchor, last frame's modalities, latency, processing time, frames out, inference failures, every
drop counter). Levels (docs/architecture.md section 2):

- sensor: OK while alive; WARN stale, offline or unsynchronised; ERROR when its stamps are off
  the node's clock by more than ``max_clock_offset_ms``.
- segmentation: ERROR while no sensor can anchor, or while inference/preprocessing keeps failing
  (``FAILING_AFTER`` frames in a row, with the reason and the counts), WARN after a failure or
  two or while a sensor is not alive or the ROS clock is not running (use_sim_time before the
  first /clock), else OK. It is OK again as soon as frames flow.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .core.health import SensorState
from .core.sync import ModalitySynchronizer

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels
FAILING_AFTER = 3  # consecutive failed frames that make the pipeline ERROR


@dataclass
class Status:
    name: str
    level: int
    message: str
    hardware_id: str = ""
    values: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class FrameStats:
    """Written by the inference worker, read by the diagnostics timer (under ``lock``)."""

    frames: int = 0
    last_anchor: str = ""
    last_modalities: tuple[str, ...] = ()
    latency_ms: float = float("nan")
    processing_ms: float = float("nan")
    inference_errors: int = 0  # failed frames in total
    failing: int = 0  # failed frames in a row (0 once one succeeds)
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self, anchor: str, modalities: tuple[str, ...], latency_ms: float, processing_ms: float
    ) -> None:
        with self.lock:
            self.frames += 1
            self.failing = 0
            self.last_anchor, self.last_modalities = anchor, modalities
            self.latency_ms, self.processing_ms = latency_ms, processing_ms

    def failed(self, error: BaseException) -> int:
        """A frame failed in preprocessing or inference; returns the failures in a row."""
        with self.lock:
            self.inference_errors += 1
            self.failing += 1
            self.last_error = f"{type(error).__name__}: {error}"[:200]
            return self.failing


@dataclass
class ClockState:
    """The ROS clock as the node sees it: running (non-zero) or not (use_sim_time, no /clock
    yet), and how many sensor messages were held back meanwhile."""

    running: bool = True
    held_back: int = 0


_SENSOR_LEVEL = {SensorState.ALIVE: OK, SensorState.STALE: WARN, SensorState.OFFLINE: WARN}


def statuses(
    prefix: str,
    sync: ModalitySynchronizer,
    now_ns: int,
    topics: dict[str, str],
    errors: dict[str, int],
    stats: FrameStats,
    mailbox_dropped: int,
    device: str,
    clock: ClockState | None = None,
) -> list[Status]:
    """Per-sensor statuses, then the pipeline's."""
    clock = clock or ClockState()
    out = [
        _sensor(prefix, sync, m, now_ns, topics[m], errors, clock.running) for m in sync.modalities
    ]
    out.append(_pipeline(prefix, sync, now_ns, errors, stats, mailbox_dropped, device, clock))
    return out


def _sensor(
    prefix: str,
    sync: ModalitySynchronizer,
    m: str,
    now_ns: int,
    topic: str,
    errors: dict[str, int],
    clock_running: bool,
) -> Status:
    mon = sync.monitor
    state = mon.state(m, now_ns)
    age = mon.age_ns(m, now_ns)
    offset = sync.clock_offset_ns(m)
    own = {k.split("/", 1)[1]: v for k, v in errors.items() if k.startswith(m + "/")}
    values = [
        ("state", state.value),
        ("age_ms", "" if age is None or not clock_running else f"{age / 1e6:.1f}"),
        ("rate_hz", f"{mon.rate_hz(m, now_ns):.2f}"),
        ("timeout_ms", f"{mon.timeouts_ns[m] / 1e6:.0f}"),
        ("max_age_ms", f"{sync.max_age_ns[m] / 1e6:.0f}"),
        ("clock_offset_ms", "" if offset is None else f"{offset / 1e6:.1f}"),
        ("synchronised", str(not sync.unsynchronised(m)).lower()),
        ("decode_errors", str(sum(own.values()))),
        *((f"decode_error.{r}", str(n)) for r, n in sorted(own.items())),
    ]
    level, message = _SENSOR_LEVEL[state], state.value
    if not sync.clock_ok(m):
        level = ERROR
        message = (
            f"{state.value}; clock offset {offset / 1e9:+.3f} s exceeds max_clock_offset_ms "
            f"{sync.max_clock_offset_ns / 1e6:.0f}: not waited for"
        )
    elif sync.unsynchronised(m) and state is SensorState.ALIVE:
        level = WARN
        message = "alive; unsynchronised: it never joined the frame sets that waited for it"
    return Status(f"{prefix}: {m}", level, message, topic, values)


def _pipeline(
    prefix: str,
    sync: ModalitySynchronizer,
    now_ns: int,
    errors: dict[str, int],
    stats: FrameStats,
    mailbox_dropped: int,
    device: str,
    clock: ClockState,
) -> Status:
    mon = sync.monitor
    anchor = sync.anchor(now_ns)
    with stats.lock:
        last = "+".join(stats.last_modalities) or "none"
        failing, total, last_error = stats.failing, stats.inference_errors, stats.last_error
        values: list[tuple[str, Any]] = [
            ("anchor", anchor or ""),
            ("last_frame_modalities", last),
            ("last_frame_anchor", stats.last_anchor),
            ("frames", stats.frames),
            ("latency_ms", f"{stats.latency_ms:.1f}"),
            ("processing_ms", f"{stats.processing_ms:.1f}"),
            ("inference_errors", total),
            ("inference_failing", failing),
            ("last_error", last_error),
        ]
    values += [("frames_dropped_busy", mailbox_dropped), ("sync_resets", sync.resets)]
    values += [(f"sync_drop.{r}", n) for r, n in sync.drops.items()]
    values += [
        (f"decode_error.{k}", n)
        for k, n in sorted(errors.items())
        if k.split("/")[0] not in sync.modalities
    ]
    values += [("clock_running", str(clock.running).lower()), ("held_back", clock.held_back)]
    values.append(("device", device))
    all_alive = all(mon.state(m, now_ns) is SensorState.ALIVE for m in sync.modalities)
    if not clock.running:
        level = WARN
        message = (
            "ROS clock not running (use_sim_time and no /clock yet): "
            f"{clock.held_back} sensor messages held back"
        )
    elif failing >= FAILING_AFTER:
        level = ERROR
        message = (
            f"inference failing: {failing} frames in a row ({total} in all); last: {last_error}"
        )
    elif anchor is None:
        level, message = ERROR, "no sensor alive: no frames"
    else:
        level = OK if all_alive and not failing else WARN
        message = f"anchor {anchor}, last frame {last}"
        if failing:
            message += f"; {failing} frame(s) failed: {last_error}"
    return Status(f"{prefix}: segmentation", level, message, "", [(k, str(v)) for k, v in values])
