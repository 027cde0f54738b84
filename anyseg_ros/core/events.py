"""Event-camera streams -> the ``event_frame`` input the model was trained on (numpy; the EVT 3.0
state machine compiled with numba, :mod:`.compiled`).

Decoders:

- event_camera_msgs/EventPacket ``evt3`` (Prophesee EVT 3.0, metavision_driver): 16-bit words,
  type in bits 15..12. The decoder keeps the stream's state across packets (row, vector base x,
  polarity, time high/low), drops words until a TIME_HIGH and then a TIME_LOW have been seen,
  and counts 24-bit rollovers (every 16.77 s) when a TIME_HIGH falls more than 10 below the
  previous one, as event_camera_codecs does. Codes 1, 9, 0xB, 0xC, 0xD are refused. One
  compiled pass over the words (1 M events in about 12 ms: BENCHMARKS.md section 7).
- ``mono`` (one uint64 per event: dt ns b0-31, x b32-47, y b48-62, polarity b63; t = time_base
  + dt), ``libcaer`` (uint32 data: polarity b1, y b2-16, x b17-31; int32 ts in us; a decrease
  inside a message adds 2^31 us) and ``libcaer_cmp`` (16-bit words, state reset per message,
  t = time_base + 1000 * (time high | time low) us).
- dvs_msgs/EventArray: ``events[]`` of x, y, ts (ROS time), polarity.

Sensor time -> ROS time as event_camera_renderer does: ``offset = header.stamp - first event
time`` from the first packet, then an exponential moving average (alpha 0.01) per packet. dvs
events carry ROS time already.

:class:`EventStream` keeps the recent events of one topic (bounded in time and count) and
accumulates the ones in ``(end - window, end]`` into a net polarity count per pixel (ON - OFF),
int16 (H, W): what :func:`anyseg_model.representations.encode_event` takes, the same counts the
world's ``mono8`` event frames carry (offset 128 there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .compiled import kernel, readonly
from .decode import DecodeError, _byte_view, stamp_ns

PACKET_ENCODINGS = ("evt3", "mono", "libcaer", "libcaer_cmp")
OFFSET_ALPHA = 0.01  # event_camera_renderer's smoothing of the sensor -> ROS time offset
ROLLOVER_MIN_DROP = 10  # a TIME_HIGH this far below the previous one is a 24-bit rollover
_EVT3_UNSUPPORTED = (0x1, 0x9, 0xB, 0xC, 0xD)
_EVT3_UNSUPPORTED_MASK = sum(1 << c for c in _EVT3_UNSUPPORTED)  # bit c: code c


@dataclass
class Events:
    """Decoded events: time (int64 ns), column, row, polarity (1 = ON)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray
    # The stream's time at the end of the packet (>= the last event's): time words without
    # events still say how far the sensor has got.
    end_t: int | None = None

    @classmethod
    def empty(cls) -> Events:
        return cls(np.zeros(0, np.int64), *(np.zeros(0, np.uint16),) * 2, np.zeros(0, np.uint8))

    def __len__(self) -> int:
        return int(self.t.size)

    def keep(self, mask: np.ndarray) -> Events:
        return Events(self.t[mask], self.x[mask], self.y[mask], self.p[mask], self.end_t)


def _words(data: Any, itemsize: int, what: str, bigendian: bool = False) -> np.ndarray:
    raw = _byte_view(data)
    if raw.size % itemsize:
        raise DecodeError("event_size", f"{what}: {raw.size} bytes is not a multiple of {itemsize}")
    code = {2: "u2", 4: "u4", 8: "u8"}[itemsize]
    return raw.view(np.dtype(code).newbyteorder(">" if bigendian else "<"))


def _last_index(mask: np.ndarray) -> np.ndarray:
    """Per position, the index of the last True at or before it (-1 if none)."""
    idx = np.where(mask, np.arange(mask.size), -1)
    return np.maximum.accumulate(idx) if idx.size else idx


def _fill(mask: np.ndarray, values: np.ndarray, initial: int) -> np.ndarray:
    """Forward fill: per position, ``values`` at the last ``mask`` position, else ``initial``."""
    last = _last_index(mask)
    return np.where(last >= 0, values[np.maximum(last, 0)], initial)


def _vector_events(
    masks: np.ndarray, nbits: int, base: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bit mask words, their base coordinate, their word index) -> (coord, word index, row in
    ``masks``) of every set bit; bit i is the event at base + i."""
    bits = (masks[:, None].astype(np.int64) >> np.arange(nbits)) & 1
    rows, cols = np.nonzero(bits)
    return base[rows] + cols, order[rows], rows


@kernel
def _evt3_words(
    w: np.ndarray, state: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int]:
    """One pass of the EVT 3.0 state machine over ``w`` (uint16 words), from and into ``state``
    (valid, seen_high, high, rollovers, low, y, base_x, polarity; int64).

    Returns (t ns, x, y, polarity, number of events, 0) with the events inside ``width`` x
    ``height``, or (..., 0, bad code) without touching ``state`` when a word type is refused."""
    # Pass 1: refuse the packet before anything changes, and bound the number of events.
    bound = 0
    for i in range(w.size):
        code = np.int64(w[i]) >> 12
        if (_EVT3_UNSUPPORTED_MASK >> code) & 1:
            z16 = np.zeros(0, np.uint16)
            return np.zeros(0, np.int64), z16, z16, np.zeros(0, np.uint8), 0, code
        bound += 1 if code == 0x2 else 12 if code == 0x4 else 8 if code == 0x5 else 0
    t = np.empty(bound, np.int64)
    xs, ys = np.empty(bound, np.uint16), np.empty(bound, np.uint16)
    ps = np.empty(bound, np.uint8)
    valid, seen_high, high, roll, low, y, base_x, pol = state
    now = ((roll << 24) | (high << 12) | low) * 1000
    k = 0
    for i in range(w.size):
        word = np.int64(w[i])
        code, v = word >> 12, word & 0xFFF
        if code == 0x8:  # TIME_HIGH: time bits 23..12; a large drop is a 24-bit rollover
            if v < high and high - v > ROLLOVER_MIN_DROP:
                roll += 1
            high, seen_high = v, 1
        elif code == 0x6:  # TIME_LOW: bits 11..0, valid once a TIME_HIGH came before it
            if not seen_high:
                continue
            low, valid = v, 1
        elif not valid:  # no time yet: the word is dropped
            continue
        elif code == 0x0:  # EVT_ADDR_Y
            y = v & 0x7FF
        elif code == 0x2:  # EVT_ADDR_X: one event at (x, y)
            x = v & 0x7FF
            if x < width and y < height:
                t[k], xs[k], ys[k], ps[k] = now, x, y, (v >> 11) & 1
                k += 1
        elif code == 0x3:  # VECT_BASE_X: the x and polarity of the vectors that follow
            base_x, pol = v & 0x7FF, (v >> 11) & 1
        elif code == 0x4 or code == 0x5:  # VECT_12 / VECT_8: bit b is an event at base_x + b
            nbits = 12 if code == 0x4 else 8
            if y < height:
                for b in range(nbits):
                    if (v >> b) & 1 and base_x + b < width:
                        t[k], xs[k], ys[k], ps[k] = now, base_x + b, y, pol
                        k += 1
            base_x += nbits
        if code == 0x8 or code == 0x6:
            now = ((roll << 24) | (high << 12) | low) * 1000
    state[:] = (valid, seen_high, high, roll, low, y, base_x, pol)
    return t, xs, ys, ps, k, 0


@dataclass
class Evt3Decoder:
    """A stateful EVT 3.0 decoder for one stream (state persists across packets)."""

    # valid (a TIME_HIGH and then a TIME_LOW have been seen), seen_high, high (time bits 23..12
    # of the last TIME_HIGH), rollovers, low, y, base_x, polarity
    state: np.ndarray = field(default_factory=lambda: np.zeros(8, np.int64))

    @property
    def valid(self) -> bool:
        return bool(self.state[0])

    @property
    def rollovers(self) -> int:
        return int(self.state[3])

    def decode(self, data: Any, width: int, height: int) -> Events:
        w = _words(data, 2, "evt3")
        t, x, y, p, n, bad = _evt3_words(readonly(w), self.state, width, height)
        if bad:
            raise DecodeError("evt3_code", f"unsupported EVT 3.0 word type {bad:#x}")
        if not self.valid:
            return Events.empty()  # no time yet: everything before it is discarded
        high, roll, low = self.state[2:5].tolist()
        end = ((roll << 24) | (high << 12) | low) * 1000 if w.size else None
        return Events(t[:n], x[:n], y[:n], p[:n], end)


def decode_mono(data: Any, time_base: int, bigendian: bool = False) -> Events:
    """``mono`` packets: one uint64 per event, t = time_base + dt (ns)."""
    v = _words(data, 8, "mono", bigendian)
    t = np.int64(time_base) + (v & 0xFFFFFFFF).astype(np.int64)
    x = ((v >> 32) & 0xFFFF).astype(np.uint16)
    y = ((v >> 48) & 0x7FFF).astype(np.uint16)
    p = (v >> 63).astype(np.uint8)
    return Events(t, x, y, p)


def decode_libcaer(data: Any, time_base: int, bigendian: bool = False) -> Events:
    """``libcaer`` packets: uint32 data + int32 timestamp (us) per event."""
    raw = _byte_view(data)
    if raw.size % 8:
        raise DecodeError("event_size", f"libcaer: {raw.size} bytes is not a multiple of 8")
    e = ">" if bigendian else "<"
    rec = raw.view(np.dtype([("data", e + "u4"), ("ts", e + "i4")]))
    d = rec["data"].astype(np.int64)
    ts = rec["ts"].astype(np.int64)
    wraps = np.concatenate([[0], np.cumsum(np.diff(ts) < 0)]) if ts.size else ts
    t = np.int64(time_base) + 1000 * (ts + (wraps << 31))
    return Events(
        t,
        ((d >> 17) & 0x7FFF).astype(np.uint16),
        ((d >> 2) & 0x7FFF).astype(np.uint16),
        ((d >> 1) & 1).astype(np.uint8),
    )


def decode_libcaer_cmp(data: Any, time_base: int) -> Events:
    """``libcaer_cmp`` packets: 16-bit words, state reset every message (codes: 0 TIME_HIGH,
    1 TIME_LOW, 2 ADDR_X, 3 ADDR_Y + emit, 4 VECT_BASE_Y, 5 VECT_8)."""
    w = _words(data, 2, "libcaer_cmp").astype(np.int64)
    code = w >> 12
    if np.any(code > 5):
        raise DecodeError("libcaer_cmp_code", f"unsupported word type {int(code[code > 5][0])}")
    n = w.size
    is_high, is_low = code == 0, code == 1
    dt_us = _fill(is_high, (w & 0xFFF) << 12, 0) | _fill(is_low, w & 0xFFF, 0)
    t = np.int64(time_base) + 1000 * dt_us
    x = _fill(code == 2, w & 0x7FF, 0)
    is_base = code == 4
    inc = np.where(code == 5, 8, 0)
    before = np.cumsum(inc) - inc
    last = _last_index(is_base)
    base = np.where(
        last >= 0, (w & 0x7FF)[np.maximum(last, 0)] + before - before[np.maximum(last, 0)], before
    )
    pol_base = _fill(is_base, (w >> 11) & 1, 0)
    single = np.flatnonzero(code == 3)
    sel = np.flatnonzero(code == 5)
    ys, order, _ = _vector_events(w[sel] & 0xFF, 8, base[sel], np.arange(n)[sel])
    all_order = np.concatenate([single, order])
    all_y = np.concatenate([w[single] & 0x7FF, ys])
    all_p = np.concatenate([(w[single] >> 11) & 1, pol_base[order]])
    s = np.argsort(all_order, kind="stable")
    o = all_order[s]
    return Events(
        t[o], x[o].astype(np.uint16), all_y[s].astype(np.uint16), all_p[s].astype(np.uint8)
    )


def decode_dvs(events: Any) -> Events:
    """dvs_msgs/EventArray ``events``: x, y, ts (builtin_interfaces/Time), polarity."""
    try:
        n = len(events)
        x = np.fromiter((e.x for e in events), np.int64, n)
        y = np.fromiter((e.y for e in events), np.int64, n)
        t = np.fromiter(
            (int(e.ts.sec) * 1_000_000_000 + int(e.ts.nanosec) for e in events), np.int64, n
        )
        p = np.fromiter((bool(e.polarity) for e in events), np.uint8, n)
    except (AttributeError, TypeError, ValueError, OverflowError) as e:
        raise DecodeError("event_array", f"unreadable events ({e})") from None
    if n and (x.min() < 0 or y.min() < 0 or x.max() > 0xFFFF or y.max() > 0xFFFF):
        raise DecodeError("event_array", "event coordinates outside 0..65535")
    return Events(t, x.astype(np.uint16), y.astype(np.uint16), p)


@dataclass
class EventStream:
    """One event topic: its decoder state, the sensor -> ROS time offset and recent events.

    ``horizon_ns``: events older than the newest minus this are forgotten; ``max_events``: at
    most this many are kept (the oldest go first, counted in ``overflow``).
    """

    max_pixels: int
    horizon_ns: int = 2_000_000_000
    max_events: int = 20_000_000
    width: int = 0
    height: int = 0
    offset_ns: float | None = None
    end_ns: int | None = None  # ROS time up to which the stream has been seen
    overflow: int = 0
    evt3: Evt3Decoder = field(default_factory=Evt3Decoder)
    _chunks: list[Events] = field(default_factory=list)

    def add_packet(self, msg: Any) -> int | None:
        """An EventPacket or dvs EventArray -> the ROS time the stream now reaches (ns), or None
        while it has no valid time yet. Raises :class:`DecodeError` for a malformed message."""
        stamp = stamp_ns(msg.header)
        try:
            w, h = int(msg.width), int(msg.height)
        except (AttributeError, TypeError, ValueError) as e:
            raise DecodeError("event_packet", f"no width/height ({e})") from None
        if w <= 0 or h <= 0 or w > 0xFFFF or h > 0xFFFF:
            raise DecodeError("geometry", f"event sensor {w}x{h}")
        if w * h > self.max_pixels:
            raise DecodeError(
                "too_large", f"{w}x{h} sensor exceeds max_image_pixels={self.max_pixels}"
            )
        if self.width and (w, h) != (self.width, self.height):
            raise DecodeError("geometry", f"{w}x{h} packet in a {self.width}x{self.height} stream")
        if hasattr(msg, "encoding"):
            ev = self._decode_packet(msg, w, h)
            if len(ev) or ev.end_t is not None:
                first = int(ev.t[0]) if len(ev) else int(ev.end_t)
                err = stamp - first
                self.offset_ns = (
                    float(err)
                    if self.offset_ns is None
                    else self.offset_ns + OFFSET_ALPHA * (err - self.offset_ns)
                )
            if self.offset_ns is None:
                return None
            off = int(round(self.offset_ns))
            ev.t = ev.t + off
            end = max(
                int(ev.t[-1]) if len(ev) else -1, (ev.end_t + off) if ev.end_t is not None else -1
            )
        else:
            ev = decode_dvs(msg.events)
            ev = ev.keep((ev.x < w) & (ev.y < h))
            end = max(int(ev.t.max()) if len(ev) else -1, stamp)
        self.width, self.height = w, h
        if len(ev):
            self._chunks.append(ev)
        self.end_ns = end if self.end_ns is None else max(self.end_ns, end)
        self._prune()
        return self.end_ns

    def _decode_packet(self, msg: Any, w: int, h: int) -> Events:
        enc = str(msg.encoding)
        big = bool(getattr(msg, "is_bigendian", False))
        if enc == "evt3":
            if big:
                raise DecodeError("encoding", "big-endian evt3 is not supported")
            return self.evt3.decode(msg.events, w, h)
        try:
            base = int(msg.time_base)
        except (AttributeError, TypeError, ValueError) as e:
            raise DecodeError("event_packet", f"no time_base ({e})") from None
        if enc == "mono":
            ev = decode_mono(msg.events, base, big)
        elif enc == "libcaer":
            ev = decode_libcaer(msg.events, base, big)
        elif enc == "libcaer_cmp":
            ev = decode_libcaer_cmp(msg.events, base)
        else:
            raise DecodeError("encoding", f"{enc!r}; accepted: {list(PACKET_ENCODINGS)}")
        return ev.keep((ev.x < w) & (ev.y < h))

    def _prune(self) -> None:
        if self.end_ns is not None:
            horizon = self.end_ns - self.horizon_ns
            while self._chunks and int(self._chunks[0].t[-1]) < horizon:
                self._chunks.pop(0)
        total = sum(len(c) for c in self._chunks)
        while self._chunks and total > self.max_events:
            total -= len(self._chunks[0])
            self.overflow += len(self._chunks.pop(0))

    def frame(self, end_ns: int, window_ns: int) -> np.ndarray:
        """Net polarity counts (ON - OFF) of the events in ``(end_ns - window_ns, end_ns]``,
        int16 (height, width)."""
        h, w = self.height, self.width
        counts = np.zeros(h * w, np.int64)
        lo = end_ns - window_ns
        for c in self._chunks:
            if int(c.t[-1]) <= lo or int(c.t[0]) > end_ns:
                continue
            sel = (c.t > lo) & (c.t <= end_ns)
            pix = c.y[sel].astype(np.int64) * w + c.x[sel]
            sign = c.p[sel].astype(np.int64) * 2 - 1
            counts += np.bincount(pix, weights=sign, minlength=h * w).astype(np.int64)
        return np.clip(counts, -32768, 32767).astype(np.int16).reshape(h, w)


@dataclass
class Evt3Encoder:
    """EVT 3.0 words for events in time order (for recordings and tests), stateful across
    packets like a sensor: a TIME_HIGH for every 4096 us step (so rollovers can be counted),
    TIME_LOW when the time changes, ADDR_Y when the row changes, one ADDR_X per event."""

    last_high: int | None = None  # absolute (unwrapped) t >> 12 of the last TIME_HIGH
    last_t: int | None = None
    last_y: int = -1

    def encode(
        self,
        t_us: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        p: np.ndarray,
        end_us: int | None = None,
    ) -> np.ndarray:
        """Events (sensor time in us, unwrapped, non-decreasing) -> little-endian uint16 words.
        ``end_us``: the time the packet ends at, written as time words after the last event."""
        t = np.asarray(t_us, np.int64)
        xs, ys, ps = (np.asarray(a, np.int64) for a in (x, y, p))
        if end_us is not None and (not t.size or end_us > t[-1]):
            # A final time stamp without an event: a row outside any sensor carries it.
            t = np.append(t, end_us)
            xs, ys, ps = np.append(xs, -1), np.append(ys, -1), np.append(ps, 0)
        n = t.size
        if not n:
            return np.zeros(0, "<u2")
        if np.any(np.diff(t) < 0):
            raise ValueError("events must be in time order")
        hi = t >> 12
        prev_hi = np.concatenate(
            [[hi[0] - 1 if self.last_high is None else self.last_high], hi[:-1]]
        )
        prev_t = np.concatenate([[-1 if self.last_t is None else self.last_t], t[:-1]])
        prev_y = np.concatenate([[self.last_y], ys[:-1]])
        is_event = xs >= 0
        n_high = hi - prev_hi
        need_low = (t != prev_t) | (n_high > 0)
        need_y = (ys != prev_y) & is_event
        count = n_high + need_low + need_y + is_event
        offsets = np.cumsum(count) - count
        out = np.zeros(int(count.sum()), np.int64)
        rep = np.repeat(np.arange(n), n_high)
        k = np.arange(rep.size) - np.repeat(np.cumsum(n_high) - n_high, n_high)
        out[offsets[rep] + k] = 0x8000 | ((prev_hi[rep] + 1 + k) & 0xFFF)
        pos = offsets + n_high
        out[pos[need_low]] = 0x6000 | (t[need_low] & 0xFFF)
        pos = pos + need_low
        out[pos[need_y]] = ys[need_y] & 0x7FF
        pos = pos + need_y
        out[pos[is_event]] = 0x2000 | (ps[is_event] << 11) | (xs[is_event] & 0x7FF)
        self.last_high, self.last_t = int(hi[-1]), int(t[-1])
        if is_event.any():
            self.last_y = int(ys[is_event][-1])
        return out.astype("<u2")
