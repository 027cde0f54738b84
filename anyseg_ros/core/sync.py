"""Anchor-based multi-sensor synchroniser that keeps working when sensors drop out.

Why not message_filters.ApproximateTimeSynchronizer: one silent input stalls every output and
there is no drop callback (docs/architecture.md section 3). Here every frame set is built
around an *anchor* message:

- Anchor: the first ALIVE modality of ``anchor_priority`` whose clock agrees with the node's
  (any alive one if none does). When it goes stale the next alive one takes over; when it comes
  back it takes over again.
- Members: for each other modality the unused message nearest in stamp to the anchor, such that
  all stamps of the set span less than ``slop`` (message_filters' criterion; see below). With
  ``max_age`` for a modality, a set that found no member of it within slop takes its newest
  message up to that age, even one that already served an earlier set (a 10 Hz LiDAR in every
  frame of a 20 Hz camera).
- Waiting: an anchor message waits for every other waitable modality until that modality's
  newest stamp reaches the anchor's stamp (nothing nearer can arrive any more) or its period
  (median of recent stamp gaps) puts the next stamp beyond the slop window, but at most
  ``wait`` after the anchor message arrived. Waitable: ALIVE, the clock within
  ``max_clock_offset`` of the node's, and not *unsynchronised* (waited for in vain many sets in a
  row; see :mod:`.clocks`); OFFLINE ones only during start-up (the first ``timeout`` after the
  first message, or after a reset), so sensors started together make full sets from the first
  frame. STALE modalities are never waited for.
- Each message is used at most once (max_age apart); sets come out in anchor-stamp order.
- Bad input costs only itself: duplicate, out-of-order, far-future, far-ahead-of-its-stream
  (a single mis-stamped message) and hopelessly late stamps are dropped and counted by reason in
  :attr:`ModalitySynchronizer.drops`; a clock that jumps back (a bag loop) resets it, and so do
  a stream's stamps that jump far back three messages in a row (a restarted source), while a
  single one is just dropped.

Equivalence with message_filters: with every sensor alive, messages arriving within ``wait`` and
consecutive stamps of each stream more than ``2 * slop`` apart (slop below half of the fastest
period, as the node's settings advise), and no max_age, the complete sets emitted here are
exactly the sets message_filters' ApproximateTimeSynchronizer emits with the same slop. With a
larger slop a message can lie within slop of two anchors; message_filters then picks by arrival
order, this class picks the nearest anchor among those already received.

Time is injected: every call takes ``now_ns`` (integer nanoseconds of the node's clock, so it
follows ``use_sim_time``). Stamps are integer nanoseconds too. Not thread-safe: the node calls it
from one callback group.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .clocks import ClockOffsets, JoinTracker, median
from .health import HealthMonitor, SensorState, uniform_timeouts
from .topics import MODALITIES

DEFAULT_ANCHOR_PRIORITY: tuple[str, ...] = ("rgb", "depth", "lidar", "event")

# A stream's next stamp is expected no sooner than this share of its median recent gap.
PERIOD_MARGIN = 0.75
GAP_WINDOW = 16  # stamp gaps per modality the period is estimated from
JUMP_CONFIRM = 3  # stamps this many times in a row far behind their stream's newest: a restart

# Why a message was discarded (keys of ModalitySynchronizer.drops).
DROP_REASONS: tuple[str, ...] = (
    "duplicate",  # same stamp as the previous message of that modality
    "out_of_order",  # older than the modality's newest stamp
    "future",  # stamped more than max_future_ns ahead of the clock
    "ahead",  # far ahead of its own stream's stamps (a single mis-stamped message)
    "late",  # arrived after every set it could have joined was emitted
    "unmatched",  # buffered, then aged out without joining a set
    "overflow",  # more than max_buffer messages of one modality waiting
    "memory",  # the oldest waiting message, when all waiting ones exceed max_buffer_bytes
    "reset",  # discarded by a reset (clock or stamps jumped back)
)


@dataclass(frozen=True)
class FrameSet:
    """Messages that belong together: the anchor's stamp, its modality, and per modality present
    ``(stamp_ns, payload)`` (the anchor included). ``reused``: modalities whose message was taken
    by max_age (it may have served an earlier set too)."""

    stamp_ns: int
    anchor: str
    items: Mapping[str, tuple[int, Any]]
    reused: frozenset[str] = frozenset()

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.items)

    def payload(self, modality: str) -> Any:
        return self.items[modality][1]

    @property
    def ages_ns(self) -> dict[str, int]:
        """Per modality, how much older its message is than the anchor's (negative: newer)."""
        return {m: self.stamp_ns - s for m, (s, _) in self.items.items()}


@dataclass(frozen=True)
class SyncEvent:
    """Something the node should log once: a sensor's state, clock or synchronisation changed,
    the anchor changed, or a reset."""

    now_ns: int
    kind: str  # "health" | "anchor" | "reset" | "clock" | "sync"
    modality: str | None = None
    old: str | None = None
    new: str | None = None
    detail: str = ""
    degraded: bool = False  # a sensor went stale/offline/off-clock/unsynchronised, a fallback

    def __str__(self) -> str:
        if self.kind == "health":
            return f"sensor {self.modality}: {self.old} -> {self.new}"
        if self.kind == "anchor":
            return f"anchor: {self.old} -> {self.new}"
        if self.kind in ("clock", "sync"):
            return f"sensor {self.modality}: {self.detail}"
        return f"synchroniser reset: {self.detail}"


class _Msg:
    __slots__ = ("stamp", "payload", "arrival", "size")

    def __init__(self, stamp: int, payload: Any, arrival: int, size: int = 0) -> None:
        self.stamp, self.payload, self.arrival, self.size = stamp, payload, arrival, size


class ModalitySynchronizer:
    """Groups per-modality messages into :class:`FrameSet` s around an anchor modality.

    Args:
        modalities: the enabled modalities.
        slop_ns: stamps of one set span less than this.
        timeout_ns: silence after which a modality is stale; one int, or a mapping covering every
            modality (per-sensor overrides).
        wait_ns: how long an anchor message waits for late messages of alive modalities.
        anchor_priority: modalities allowed to anchor, best first (default rgb, depth, lidar,
            event, restricted to the enabled ones). Unlisted modalities never anchor.
        max_age_ns: per modality (one int or a mapping), how old a reused message may be; 0 =
            each message serves at most one set.
        max_clock_offset_ns: a modality whose stamps are this far from the clock (median) is
            not waited for and reported; 0 disables the check.
        max_future_ns: stamps further ahead of the clock are dropped (None: no limit).
        stamp_jump_ns: a stamp this far behind its modality's newest, three times in a row,
            means the source restarted (e.g. a bag loop without sim time): reset.
        clock_jump_ns: the clock going back by more than this resets; smaller steps back are
            clamped (time never runs backwards inside).
        max_buffer: messages kept per modality while waiting (oldest dropped beyond).
        max_buffer_bytes: all waiting messages together hold at most this many bytes, as
            ``payload_bytes(payload)`` counts them (None: no limit); beyond it the oldest
            waiting message of any modality is dropped ("memory").
    """

    def __init__(
        self,
        modalities: Iterable[str],
        slop_ns: int,
        timeout_ns: int | Mapping[str, int],
        wait_ns: int,
        anchor_priority: Sequence[str] | None = None,
        *,
        max_age_ns: int | Mapping[str, int] = 0,
        max_clock_offset_ns: int = 500_000_000,
        max_future_ns: int | None = 1_000_000_000,
        stamp_jump_ns: int = 1_000_000_000,
        clock_jump_ns: int = 100_000_000,
        max_buffer: int = 64,
        max_buffer_bytes: int | None = None,
        payload_bytes: Callable[[Any], int] = lambda payload: 0,
    ) -> None:
        mods = list(dict.fromkeys(modalities))
        if not mods or any(m not in MODALITIES for m in mods):
            raise ValueError(
                f"modalities must be a non-empty subset of {list(MODALITIES)}, got {mods}"
            )
        self.modalities = tuple(m for m in MODALITIES if m in mods)
        _check_int("max_buffer", max_buffer, 1)
        self.max_future_ns = max_future_ns
        self.stamp_jump_ns = stamp_jump_ns
        self.clock_jump_ns = clock_jump_ns
        self.max_buffer = max_buffer
        self.max_buffer_bytes = max_buffer_bytes
        self._payload_bytes = payload_bytes
        self._health = HealthMonitor(uniform_timeouts(self.modalities, timeout_ns))
        self._clocks = ClockOffsets(self.modalities)
        self._joins = JoinTracker(self.modalities)
        self._events: list[SyncEvent] = []
        self._now: int | None = None
        self._clock_bad: dict[str, bool] = dict.fromkeys(self.modalities, False)
        self.configure(
            slop_ns=slop_ns,
            timeout_ns=timeout_ns,
            wait_ns=wait_ns,
            anchor_priority=anchor_priority,
            max_age_ns=max_age_ns,
            max_clock_offset_ns=max_clock_offset_ns,
        )
        self.drops: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.emitted = 0
        self.resets = 0
        self._anchor: str | None = None
        self._clear()

    def configure(
        self,
        *,
        slop_ns: int,
        timeout_ns: int | Mapping[str, int],
        wait_ns: int,
        anchor_priority: Sequence[str] | None = None,
        max_age_ns: int | Mapping[str, int] = 0,
        max_clock_offset_ns: int = 500_000_000,
    ) -> None:
        """Set the matching parameters; called by the constructor and for live parameter
        changes, which take effect from the next set. Buffers, health and clocks are kept."""
        if anchor_priority is None:
            anchor_priority = [m for m in DEFAULT_ANCHOR_PRIORITY if m in self.modalities]
        bad = [m for m in anchor_priority if m not in self.modalities]
        if not anchor_priority or bad or len(set(anchor_priority)) != len(anchor_priority):
            raise ValueError(
                f"anchor_priority must list distinct enabled modalities {list(self.modalities)}, "
                f"got {list(anchor_priority)}"
            )
        _check_int("slop_ns", slop_ns, 1)
        _check_int("wait_ns", wait_ns, 0)
        _check_int("max_clock_offset_ns", max_clock_offset_ns, 0)
        ages = uniform_timeouts(self.modalities, max_age_ns)
        for m, age in ages.items():
            _check_int(f"max_age_ns[{m!r}]", age, 0)
        self._health.set_timeouts(uniform_timeouts(self.modalities, timeout_ns))
        self.anchor_priority = tuple(anchor_priority)
        self.slop_ns, self.wait_ns = slop_ns, wait_ns
        self.max_age_ns = ages
        self._clocks.max_offset_ns = max_clock_offset_ns
        self._startup_ns = max(self._health.timeouts_ns.values())
        for m in self.modalities:  # a live change of the limit: judge the offsets again
            self._note_clock(m, self._now or 0)

    # ------------------------------------------------------------------ public API

    def push(self, modality: str, stamp_ns: int, payload: Any, now_ns: int) -> list[FrameSet]:
        """Add one message; returns the frame sets that became ready (possibly none)."""
        if modality not in self._buffers:
            raise KeyError(
                f"modality {modality!r} is not enabled; enabled: {list(self.modalities)}"
            )
        now = self._advance_clock(now_ns)
        ahead = self._clocks.observe(modality, stamp_ns, now)  # every message counts, but one
        self._note_clock(modality, now)  # far-ahead outlier is kept out of the median
        reason = self._admit(modality, stamp_ns, now, ahead)  # may reset
        if self._start is None:
            self._start = now
        if reason is None:
            buf = self._buffers[modality]
            msg = _Msg(stamp_ns, payload, now, self._payload_bytes(payload))
            buf.append(msg)
            self.buffered_bytes += msg.size
            if self._newest[modality] is not None:
                gaps = self._gaps[modality]
                gaps.append(stamp_ns - self._newest[modality])
                self._period[modality] = median(gaps) if len(gaps) >= 3 else None
            self._newest[modality] = stamp_ns
            if len(buf) > self.max_buffer:
                self._retire(modality, buf.popleft())
                self.drops["overflow"] += 1
            self._bound_bytes()
        else:
            self.drops[reason] += 1
        if reason in (None, "late", "future", "ahead"):
            # Badly stamped messages still prove the sensor is alive: it is then reported with
            # its clock offset instead of looking silent.
            self._health.seen(modality, now)
        return self._collect(now)

    def poll(self, now_ns: int) -> list[FrameSet]:
        """Emit sets whose wait ran out or whose missing sensors went stale (call periodically)."""
        return self._collect(self._advance_clock(now_ns))

    def health(self, now_ns: int) -> dict[str, SensorState]:
        """``{modality: 'offline' | 'alive' | 'stale'}`` (SensorState compares equal to the str)."""
        return self._health.states(now_ns)

    def anchor(self, now_ns: int) -> str | None:
        """The modality that anchors sets now (see the module docstring)."""
        return self._anchor_of(self._health.states(now_ns))

    def events(self) -> list[SyncEvent]:
        """State changes since the last call (each reported once), oldest first."""
        out, self._events = self._events, []
        return out

    @property
    def monitor(self) -> HealthMonitor:
        """Per-sensor liveness, age and rate (read it for diagnostics)."""
        return self._health

    def clock_offset_ns(self, modality: str) -> int | None:
        """Median of stamp - clock over the modality's recent messages (None: too few yet)."""
        return self._clocks.offset_ns(modality)

    def clock_ok(self, modality: str) -> bool:
        return not self._clock_bad[modality]

    @property
    def max_clock_offset_ns(self) -> int:
        return self._clocks.max_offset_ns

    def unsynchronised(self, modality: str) -> bool:
        """Waited for in vain by too many sets (no longer waited for, bar probes)."""
        return self._joins.unsynchronised(modality)

    # ------------------------------------------------------------------ admission

    def _admit(self, modality: str, stamp: int, now: int, ahead: bool) -> str | None:
        """None if the message may be buffered, else the drop reason."""
        if self.max_future_ns is not None and stamp > now + self.max_future_ns:
            return "future"
        if ahead:
            return "ahead"  # kept out of _newest: the good messages after it still count
        newest = self._newest[modality]
        if newest is not None and stamp <= newest:
            if newest - stamp <= self.stamp_jump_ns:
                return "duplicate" if stamp == newest else "out_of_order"
            self._behind[modality] += 1
            if self._behind[modality] < JUMP_CONFIRM:
                return "out_of_order"  # one far-back stamp is a bad message, not a restart
            self._reset(now, f"{modality} stamps jumped back by {(newest - stamp) / 1e9:.3f} s")
        self._behind[modality] = 0
        if self._last_emitted is not None and stamp <= self._last_emitted - self.slop_ns:
            return "late"  # every later set is anchored after _last_emitted: out of slop
        return None

    def _advance_clock(self, now: int) -> int:
        if self._now is not None and now < self._now:
            if self._now - now > self.clock_jump_ns:
                self._reset(now, f"clock jumped back by {(self._now - now) / 1e9:.3f} s")
            else:
                now = self._now  # jitter of a non-monotonic clock: clamp
        self._now = now
        return now

    def _reset(self, now: int, why: str) -> None:
        self.drops["reset"] += sum(len(b) for b in self._buffers.values())
        self.resets += 1
        self._health.reset()
        self._clear()
        self._events.append(SyncEvent(now, "reset", detail=why, degraded=True))
        for m in self.modalities:  # offsets forgotten: nothing is off the clock any more
            self._note_clock(m, now)

    def _clear(self) -> None:
        # Per modality: unused messages in stamp order (appends only, stamps strictly increase).
        self._buffers: dict[str, deque[_Msg]] = {m: deque() for m in self.modalities}
        self.buffered_bytes = 0  # payload_bytes of every waiting message
        self._newest: dict[str, int | None] = dict.fromkeys(self.modalities)
        self._gaps: dict[str, deque[int]] = {m: deque(maxlen=GAP_WINDOW) for m in self.modalities}
        self._period: dict[str, int | None] = dict.fromkeys(self.modalities)  # median gap
        self._behind: dict[str, int] = dict.fromkeys(self.modalities, 0)
        self._last: dict[str, _Msg | None] = dict.fromkeys(self.modalities)  # newest retired
        self._last_emitted: int | None = None
        self._start: int | None = None  # first message after construction or a reset
        self._clocks.reset()
        self._joins.reset()

    def _bound_bytes(self) -> None:
        """Drop the oldest waiting messages until the buffers hold at most max_buffer_bytes."""
        limit = self.max_buffer_bytes
        while limit is not None and self.buffered_bytes > limit:
            oldest = min((b for b in self._buffers.values() if b), key=lambda b: b[0].arrival)
            self._retire(next(m for m, b in self._buffers.items() if b is oldest), oldest.popleft())
            self.drops["memory"] += 1

    def _retire(self, modality: str, msg: _Msg) -> None:
        """A message left the buffer (used, aged out, overflowed): max_age may still reuse it."""
        self.buffered_bytes -= msg.size
        last = self._last[modality]
        if last is None or msg.stamp > last.stamp:
            self._last[modality] = msg

    # ------------------------------------------------------------------ matching

    def _collect(self, now: int) -> list[FrameSet]:
        states = self._health.states(now)  # fixed for this call: now does not move
        anchor = self._note_state_changes(now, states)
        out = []
        if anchor is not None:
            while (msg := self._next_anchor_message(anchor)) is not None:
                waitable = self._waitable(now, states)  # a set just emitted may change it
                if self._must_wait(anchor, msg, now, waitable):
                    break
                out.append(self._emit(anchor, msg, now, waitable, states))
        self._prune()
        return out

    def _next_anchor_message(self, anchor: str) -> _Msg | None:
        """The oldest anchor-modality message that may still anchor a set (stamp order)."""
        for msg in self._buffers[anchor]:
            if self._last_emitted is None or msg.stamp > self._last_emitted:
                return msg
        return None

    def _must_wait(self, anchor: str, msg: _Msg, now: int, waitable: list[str]) -> bool:
        if now - msg.arrival >= self.wait_ns:
            return False
        return any(m != anchor and not self._settled(m, msg.stamp) for m in waitable)

    def _waitable(self, now: int, states: Mapping[str, SensorState]) -> list[str]:
        """Alive modalities with a sane clock that are not unsynchronised, plus during start-up
        the ones not heard from yet: sensors started together arrive a few ms apart, and without
        this the first one would be emitted alone and the first frame of the others dropped as
        late."""
        starting = self._start is not None and now - self._start <= self._startup_ns
        return [
            m
            for m, st in states.items()
            if (st is SensorState.ALIVE or (starting and st is SensorState.OFFLINE))
            and not self._clock_bad[m]
            and self._joins.waitable(m, now)
        ]

    def _settled(self, modality: str, stamp: int) -> bool:
        """True once no future message of ``modality`` can be a better match for ``stamp``:
        streams are in stamp order, so after a stamp >= ``stamp`` everything is further away; and
        when the stream's period says its next stamp falls beyond the slop window, nothing more
        can join (a 10 Hz LiDAR does not hold up the 15 Hz camera frames between its sweeps)."""
        newest = self._newest[modality]
        if newest is None:
            return False
        if newest >= stamp:
            return True
        # The median of recent gaps is the period, robust to extra messages (which make a few
        # gaps short) and to lost ones (a few long); PERIOD_MARGIN absorbs timing jitter.
        period = self._period[modality]
        return period is not None and newest + PERIOD_MARGIN * period >= stamp + self.slop_ns

    def _emit(
        self,
        anchor: str,
        msg: _Msg,
        now: int,
        waitable: list[str],
        states: Mapping[str, SensorState],
    ) -> FrameSet:
        t = msg.stamp
        chosen: dict[str, _Msg] = {anchor: msg}
        lo = hi = t
        # Nearest first; ties go to the modality earlier in canonical order (deterministic).
        for _, _, modality, cand in sorted(self._candidates(anchor, msg)):
            if modality in chosen or max(hi, cand.stamp) - min(lo, cand.stamp) >= self.slop_ns:
                continue
            chosen[modality] = cand
            lo, hi = min(lo, cand.stamp), max(hi, cand.stamp)
        reused = set()
        for modality in self.modalities:
            if modality not in chosen and states[modality] is SensorState.ALIVE:
                old = self._recent(modality, t)
                if old is not None:
                    chosen[modality] = old
                    reused.add(modality)
        for modality, m in chosen.items():
            if m in self._buffers[modality]:
                self._buffers[modality].remove(m)
                self._retire(modality, m)
        self._track_joins(anchor, msg, now, chosen.keys() - reused, waitable, states)
        self._last_emitted = t
        self.emitted += 1
        items = {m: (chosen[m].stamp, chosen[m].payload) for m in self.modalities if m in chosen}
        return FrameSet(t, anchor, items, frozenset(reused))

    def _recent(self, modality: str, t: int) -> _Msg | None:
        """The newest message of ``modality`` stamped at most max_age before ``t`` (buffered or
        already used), for a set that found none within slop."""
        age = self.max_age_ns[modality]
        if age <= 0:
            return None
        best = None
        for m in (*self._buffers[modality], self._last[modality]):
            if m is not None and t - age <= m.stamp <= t and (best is None or m.stamp > best.stamp):
                best = m
        return best

    def _track_joins(
        self,
        anchor: str,
        msg: _Msg,
        now: int,
        joined: Iterable[str],
        waitable: list[str],
        states: Mapping[str, SensorState],
    ) -> None:
        """Count sets that waited for an alive sensor in vain: it did not join within slop, it
        was not settled (the wait ran out for it), and it did send during the wait (a sensor
        falling silent is going stale, not unsynchronised). Report the unsynchronised ones and
        their recovery. A message reused by max_age is no join: it says nothing about clocks."""
        joined, t = set(joined), msg.stamp
        for m in self.modalities:
            if m == anchor:
                continue
            if m in joined:
                if self._joins.joined(m):
                    self._events.append(SyncEvent(now, "sync", m, detail="synchronised again"))
                continue
            if m not in waitable or states[m] is not SensorState.ALIVE or self._settled(m, t):
                continue
            heard = self._health.last_seen_ns(m)
            # A probe of an unsynchronised sensor that did not join has failed either way.
            waited = self._joins.unsynchronised(m) or (heard is not None and heard >= msg.arrival)
            if waited and self._joins.missed(m, now):
                n = self._joins.misses[m]
                detail = f"unsynchronised ({n} frame sets waited for it in vain): "
                self._events.append(
                    SyncEvent(now, "sync", m, detail=detail + "no longer waited for", degraded=True)
                )

    def _candidates(self, anchor: str, msg: _Msg) -> list[tuple[int, int, str, _Msg]]:
        """Messages within slop of the anchor message, unless a later anchor message already
        received is strictly nearer to them (they belong to that one)."""
        t = msg.stamp
        later = next((m.stamp for m in self._buffers[anchor] if m.stamp > t), None)
        out = []
        for rank, modality in enumerate(self.modalities):
            if modality == anchor:
                continue
            for cand in self._buffers[modality]:
                d = abs(cand.stamp - t)
                if d >= self.slop_ns or (later is not None and abs(cand.stamp - later) < d):
                    continue
                out.append((d, rank, modality, cand))
        return out

    def _prune(self) -> None:
        """Drop messages that can no longer join any set: every future anchor is stamped after
        ``_last_emitted``, so members must be stamped after ``_last_emitted - slop``."""
        if self._last_emitted is None:
            return
        horizon = self._last_emitted - self.slop_ns
        for modality, buf in self._buffers.items():
            while buf and buf[0].stamp <= horizon:
                self._retire(modality, buf.popleft())
                self.drops["unmatched"] += 1

    def _note_state_changes(self, now: int, states: Mapping[str, SensorState]) -> str | None:
        """Record health, clock and anchor changes as events; returns the current anchor."""
        for tr in self._health.update(now, states):
            bad = tr.new is not SensorState.ALIVE
            self._events.append(
                SyncEvent(now, "health", tr.modality, tr.old.value, tr.new.value, degraded=bad)
            )
        anchor = self._anchor_of(states)
        if anchor != self._anchor:
            rank = self.anchor_priority.index
            bad = anchor is None or (self._anchor is not None and rank(anchor) > rank(self._anchor))
            self._events.append(SyncEvent(now, "anchor", None, self._anchor, anchor, degraded=bad))
            self._anchor = anchor
        return anchor

    def _note_clock(self, m: str, now: int) -> None:
        """Keep ``_clock_bad`` (read on every call) in step with the offsets, which change only
        when a message is added, the limit changes or a reset forgets them; report changes."""
        bad = not self._clocks.clock_ok(m)
        if bad == self._clock_bad[m]:
            return
        self._clock_bad[m] = bad
        off = self._clocks.offset_ns(m)
        limit = self._clocks.max_offset_ns / 1e9
        detail = (
            f"clock offset {off / 1e9:+.3f} s exceeds {limit:.3f} s: not waited for"
            if bad
            else "clock offset back within "
            f"{limit:.3f} s ({'unknown' if off is None else f'{off / 1e9:+.3f} s'})"
        )
        self._events.append(SyncEvent(now, "clock", m, detail=detail, degraded=bad))

    def _anchor_of(self, states: Mapping[str, SensorState]) -> str | None:
        alive = [m for m in self.anchor_priority if states[m] is SensorState.ALIVE]
        # A sensor stamped on another clock anchors only if no other can: its stamps would
        # make every other sensor's messages late.
        return next((m for m in alive if not self._clock_bad[m]), alive[0] if alive else None)


def _check_int(name: str, v: Any, low: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name} must be an int >= {low}, got {v!r}")
