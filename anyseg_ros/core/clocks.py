"""Per-sensor clock offsets and "unsynchronised" detection for the synchroniser.

A sensor's stamps should follow the node's clock: ``stamp - now`` at arrival is minus its latency,
tens of milliseconds. :class:`ClockOffsets` keeps the median of that difference over the last
messages of each sensor. It tells three things (docs/architecture.md section 3):

- the sensor's clock offset (shown on /diagnostics), and whether it is beyond
  ``max_offset_ns``: a LiDAR stamped by its own oscillator, a camera 5 s behind. Such a sensor is
  reported at ERROR level and not waited for;
- whether one message is far *ahead* of its own stream (more than ``ahead_ns`` past where the
  median puts it, or, once ``window`` messages are known, more than ``spread`` times their median
  absolute deviation and at least ``min_ahead_ns``: a stream whose latency varies by a few
  milliseconds shows a message 100 ms ahead as plainly as one 2 s ahead): a single mis-stamped
  message, dropped alone instead of being taken as the stream's newest stamp (which would make
  the good messages after it look out of order). It is kept out of the median too. ``confirm``
  such messages in a row are no outlier: the sensor's clock moved (or a backlog of late messages
  just cleared), and the window starts over from the last one, so a real change costs
  ``confirm - 1`` messages;
- nothing until ``min_samples`` messages were seen: one message is no evidence.

:class:`JoinTracker` counts, per sensor, the frame sets that waited for it in vain (the wait ran
out, it did not join, and it did send meanwhile: a sensor that falls silent is going stale, not
unsynchronised). After ``after`` such misses without a join it is *unsynchronised*: frames stop
waiting for it, except for one probe every ``probe_ns``, and it is synchronised again as soon as
it joins a set. Its stamps may be within ``max_offset_ns`` of the clock and still never within
slop of the others (a constant offset of 100 ms, a latency longer than the wait).

Pure and clock-injected like the rest of the core: integer nanoseconds in, no rclpy.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable


def median(values: Iterable[int]) -> int:
    """The median of integers (the lower middle one for an even count: stays an int)."""
    v = sorted(values)
    if not v:
        raise ValueError("median of nothing")
    return v[(len(v) - 1) // 2]


class ClockOffsets:
    """Median ``stamp - now`` per sensor over the last ``window`` messages.

    Args:
        names: the sensors.
        max_offset_ns: a median offset beyond this (either sign) is a clock error; 0 disables.
        ahead_ns: a message stamped more than this past the median is a mis-stamped outlier.
        min_ahead_ns, spread: with a full window, so is one more than ``spread`` median absolute
            deviations and at least ``min_ahead_ns`` past it.
        window: messages per sensor the median is taken over.
        min_samples: messages needed before anything is judged.
    """

    def __init__(
        self,
        names: Iterable[str],
        max_offset_ns: int = 500_000_000,
        ahead_ns: int = 250_000_000,
        window: int = 16,
        min_samples: int = 3,
        confirm: int = 3,
        min_ahead_ns: int = 50_000_000,
        spread: int = 8,
    ) -> None:
        for name, v, low in (
            ("max_offset_ns", max_offset_ns, 0),
            ("ahead_ns", ahead_ns, 1),
            ("min_ahead_ns", min_ahead_ns, 1),
            ("spread", spread, 1),
            ("window", window, 1),
            ("min_samples", min_samples, 1),
            ("confirm", confirm, 1),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
        self.names = tuple(names)
        self.max_offset_ns, self.ahead_ns = max_offset_ns, ahead_ns
        self.min_ahead_ns, self.spread = min(min_ahead_ns, ahead_ns), spread
        self.window, self.min_samples, self.confirm = window, min_samples, confirm
        self.reset()

    def reset(self) -> None:
        """Forget every sample (the clock jumped back, a source restarted)."""
        self._samples: dict[str, deque[int]] = {n: deque(maxlen=self.window) for n in self.names}
        self._offset: dict[str, int | None] = dict.fromkeys(self.names)
        self._ahead: dict[str, int] = dict.fromkeys(self.names, 0)  # outliers in a row

    def observe(self, name: str, stamp_ns: int, now_ns: int) -> bool:
        """Record one message; True if it is a lone far-ahead outlier (the caller drops it),
        which is then left out of the median."""
        s, offset = self._samples[name], stamp_ns - now_ns
        if self.is_ahead(name, stamp_ns, now_ns):
            self._ahead[name] += 1
            if self._ahead[name] < self.confirm:
                return True
            s.clear()  # not an outlier: the stream itself moved; start over from here
        self._ahead[name] = 0
        s.append(offset)
        # Kept up to date here (once per message): it is read several times per message.
        self._offset[name] = median(s) if len(s) >= self.min_samples else None
        return False

    def offset_ns(self, name: str) -> int | None:
        """The median offset, or None before ``min_samples`` messages."""
        return self._offset[name]

    def is_ahead(self, name: str, stamp_ns: int, now_ns: int) -> bool:
        """True if this message is stamped far past where its stream's median puts it."""
        off = self.offset_ns(name)
        if off is None:
            return False
        excess = stamp_ns - now_ns - off
        if excess <= self.min_ahead_ns or excess > self.ahead_ns:
            return excess > self.ahead_ns
        s = self._samples[name]  # only here, rarely: the deviations' median costs a sort
        return len(s) == self.window and excess > self.spread * median(abs(x - off) for x in s)

    def clock_ok(self, name: str) -> bool:
        """False once the median offset is beyond ``max_offset_ns`` (unknown counts as ok)."""
        off = self.offset_ns(name)
        return self.max_offset_ns == 0 or off is None or abs(off) <= self.max_offset_ns


class JoinTracker:
    """Consecutive frame sets that waited for a sensor in vain, and the resulting state."""

    def __init__(self, names: Iterable[str], after: int = 8, probe_ns: int = 2_000_000_000):
        if after < 1 or probe_ns < 1:
            raise ValueError(f"after and probe_ns must be >= 1, got {after}, {probe_ns}")
        self.names = tuple(names)
        self.after, self.probe_ns = after, probe_ns
        self.reset()

    def reset(self) -> None:
        self.misses: dict[str, int] = dict.fromkeys(self.names, 0)
        self._since: dict[str, int | None] = dict.fromkeys(self.names)  # unsynchronised since

    def unsynchronised(self, name: str) -> bool:
        return self._since[name] is not None

    def waitable(self, name: str, now_ns: int) -> bool:
        """Whether a frame set should wait for this sensor now: always while synchronised; when
        unsynchronised, once per ``probe_ns`` (a probe: it may have recovered)."""
        since = self._since[name]
        return since is None or now_ns - since >= self.probe_ns

    def joined(self, name: str) -> bool:
        """It joined a set; True if that ends an unsynchronised spell."""
        was = self._since[name] is not None
        self.misses[name], self._since[name] = 0, None
        return was

    def missed(self, name: str, now_ns: int) -> bool:
        """A set waited for it and went without it; True if it just became unsynchronised."""
        self.misses[name] += 1
        if self._since[name] is not None:
            self._since[name] = now_ns  # a failed probe: wait again only after another period
            return False
        if self.misses[name] >= self.after:
            self._since[name] = now_ns
            return True
        return False
