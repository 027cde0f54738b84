"""Per-sensor liveness: OFFLINE (never seen) -> ALIVE -> STALE (silent past its timeout) -> ALIVE.

The clock is injected: every call takes ``now_ns`` (the node passes its ROS clock, so liveness
follows ``use_sim_time`` during replay; tests pass integers). Modelled on ros2/demos'
topic_monitor. Transitions are reported once each through :meth:`HealthMonitor.update`, so the
node can log a state change exactly once and publish it on /diagnostics.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class SensorState(str, enum.Enum):
    """A sensor's state; compares equal to its plain string (``SensorState.ALIVE == 'alive'``)."""

    OFFLINE = "offline"
    ALIVE = "alive"
    STALE = "stale"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Transition:
    """One sensor changed state at ``now_ns``."""

    now_ns: int
    modality: str
    old: SensorState
    new: SensorState

    def __str__(self) -> str:
        return f"{self.modality}: {self.old} -> {self.new}"


class HealthMonitor:
    """Liveness and arrival rate of a fixed set of sensors.

    ``timeouts_ns`` maps every sensor to the silence after which it counts as stale (a sensor is
    alive while ``now - last_seen <= timeout``). ``rate_window`` arrivals are kept per sensor to
    estimate its rate.
    """

    def __init__(self, timeouts_ns: Mapping[str, int], rate_window: int = 32) -> None:
        if not timeouts_ns:
            raise ValueError("HealthMonitor needs at least one sensor")
        if rate_window < 2:
            raise ValueError(f"rate_window must be >= 2, got {rate_window}")
        self.timeouts_ns: dict[str, int] = {}
        self.set_timeouts(timeouts_ns)
        self._rate_window = rate_window
        self._arrivals: dict[str, deque[int]] = {}
        self._reported: dict[str, SensorState] = {}
        self.reset()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.timeouts_ns)

    def set_timeouts(self, timeouts_ns: Mapping[str, int]) -> None:
        """New timeouts for the same sensors (a live parameter change); arrivals are kept."""
        if self.timeouts_ns and set(timeouts_ns) != set(self.timeouts_ns):
            raise ValueError(f"timeouts must cover exactly {list(self.timeouts_ns)}")
        for name, t in timeouts_ns.items():
            if isinstance(t, bool) or not isinstance(t, int) or t <= 0:
                raise ValueError(f"timeout for {name!r} must be a positive int (ns), got {t!r}")
        self.timeouts_ns = dict(timeouts_ns)

    def reset(self) -> None:
        """Forget everything (a backwards clock jump): every sensor is OFFLINE again.

        The reported states are kept, so the next :meth:`update` reports ALIVE/STALE -> OFFLINE.
        """
        self._arrivals = {n: deque(maxlen=self._rate_window) for n in self.timeouts_ns}
        for n in self.timeouts_ns:
            self._reported.setdefault(n, SensorState.OFFLINE)

    def seen(self, name: str, now_ns: int) -> None:
        """Record that a message from ``name`` arrived at ``now_ns``."""
        self._arrivals[self._check(name)].append(now_ns)

    def last_seen_ns(self, name: str) -> int | None:
        a = self._arrivals[self._check(name)]
        return a[-1] if a else None

    def state(self, name: str, now_ns: int) -> SensorState:
        a = self._arrivals[self._check(name)]
        if not a:
            return SensorState.OFFLINE
        return SensorState.ALIVE if now_ns - a[-1] <= self.timeouts_ns[name] else SensorState.STALE

    def states(self, now_ns: int) -> dict[str, SensorState]:
        out = {}
        for name, a in self._arrivals.items():  # the synchroniser's hot path: no per-name lookups
            if not a:
                out[name] = SensorState.OFFLINE
            else:
                alive = now_ns - a[-1] <= self.timeouts_ns[name]
                out[name] = SensorState.ALIVE if alive else SensorState.STALE
        return out

    def alive(self, now_ns: int) -> tuple[str, ...]:
        return tuple(n for n in self.timeouts_ns if self.state(n, now_ns) is SensorState.ALIVE)

    def age_ns(self, name: str, now_ns: int) -> int | None:
        """Time since the last message, or None if the sensor was never seen."""
        last = self.last_seen_ns(name)
        return None if last is None else now_ns - last

    def rate_hz(self, name: str, now_ns: int) -> float:
        """Arrival rate over the recent window; 0.0 unless the sensor is alive."""
        a = self._arrivals[self._check(name)]
        if len(a) < 2 or self.state(name, now_ns) is not SensorState.ALIVE:
            return 0.0
        span = a[-1] - a[0]
        return (len(a) - 1) * 1e9 / span if span > 0 else 0.0

    def update(
        self, now_ns: int, states: Mapping[str, SensorState] | None = None
    ) -> list[Transition]:
        """States that changed since the last call, each reported once (``states``: this
        instant's :meth:`states`, if the caller has them already)."""
        out = []
        for name, new in (states or self.states(now_ns)).items():
            old = self._reported[name]
            if new is not old:
                out.append(Transition(now_ns, name, old, new))
                self._reported[name] = new
        return out

    def _check(self, name: str) -> str:
        if name not in self.timeouts_ns:
            raise KeyError(f"unknown sensor {name!r}; known: {list(self.timeouts_ns)}")
        return name


def uniform_timeouts(names: Iterable[str], timeout_ns: int | Mapping[str, int]) -> dict[str, int]:
    """One timeout for all sensors, or a mapping that must cover each of them exactly."""
    names = tuple(names)
    if isinstance(timeout_ns, Mapping):
        missing = [n for n in names if n not in timeout_ns]
        extra = [n for n in timeout_ns if n not in names]
        if missing or extra:
            raise ValueError(
                f"timeout mapping must cover exactly {list(names)}; "
                f"missing {missing}, extra {extra}"
            )
        return {n: timeout_ns[n] for n in names}
    return {n: timeout_ns for n in names}
