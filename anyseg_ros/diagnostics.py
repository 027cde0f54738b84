"""/diagnostics content for the node as plain data (the node turns it into DiagnosticStatus).

One status per sensor (state, age, rate, decode errors) and one for the pipeline (anchor, last
frame's modalities, latency, processing time, frames out, every drop counter).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .core.health import SensorState
from .core.sync import ModalitySynchronizer

OK, WARN, ERROR = 0, 1, 2  # diagnostic_msgs/DiagnosticStatus levels


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
    inference_errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(
        self, anchor: str, modalities: tuple[str, ...], latency_ms: float, processing_ms: float
    ) -> None:
        with self.lock:
            self.frames += 1
            self.last_anchor, self.last_modalities = anchor, modalities
            self.latency_ms, self.processing_ms = latency_ms, processing_ms


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
) -> list[Status]:
    """Per-sensor statuses, then the pipeline's."""
    out = []
    mon = sync.monitor
    for m in sync.modalities:
        state = mon.state(m, now_ns)
        age = mon.age_ns(m, now_ns)
        own = {k.split("/", 1)[1]: v for k, v in errors.items() if k.startswith(m + "/")}
        values = [
            ("state", state.value),
            ("age_ms", "" if age is None else f"{age / 1e6:.1f}"),
            ("rate_hz", f"{mon.rate_hz(m, now_ns):.2f}"),
            ("timeout_ms", f"{mon.timeouts_ns[m] / 1e6:.0f}"),
            ("decode_errors", str(sum(own.values()))),
            *((f"decode_error.{r}", str(n)) for r, n in sorted(own.items())),
        ]
        out.append(Status(f"{prefix}: {m}", _SENSOR_LEVEL[state], state.value, topics[m], values))

    anchor = sync.anchor(now_ns)
    with stats.lock:
        last = "+".join(stats.last_modalities) or "none"
        values: list[tuple[str, Any]] = [
            ("anchor", anchor or ""),
            ("last_frame_modalities", last),
            ("last_frame_anchor", stats.last_anchor),
            ("frames", stats.frames),
            ("latency_ms", f"{stats.latency_ms:.1f}"),
            ("processing_ms", f"{stats.processing_ms:.1f}"),
            ("inference_errors", stats.inference_errors),
        ]
    values += [("frames_dropped_busy", mailbox_dropped), ("sync_resets", sync.resets)]
    values += [(f"sync_drop.{r}", n) for r, n in sync.drops.items()]
    values += [
        (f"decode_error.{k}", n)
        for k, n in sorted(errors.items())
        if k.split("/")[0] not in sync.modalities
    ]
    values.append(("device", device))
    all_alive = all(mon.state(m, now_ns) is SensorState.ALIVE for m in sync.modalities)
    level = ERROR if anchor is None else (OK if all_alive else WARN)
    message = f"anchor {anchor}, last frame {last}" if anchor else "no sensor alive: no frames"
    out.append(
        Status(f"{prefix}: segmentation", level, message, "", [(k, str(v)) for k, v in values])
    )
    return out
