"""Event-camera streams -> the ``event_frame`` input the model was trained on (numpy only).

Decoders (vectorised: no Python loop per event or word):

- event_camera_msgs/EventPacket ``evt3`` (Prophesee EVT 3.0, metavision_driver): 16-bit words,
  type in bits 15..12. The decoder keeps the stream's state across packets (row, vector base x,
  polarity, time high/low), drops words until a TIME_HIGH and then a TIME_LOW have been seen,
  and counts 24-bit rollovers (every 16.77 s) when a TIME_HIGH falls more than 10 below the
  previous one, as event_camera_codecs does. Codes 1, 9, 0xB, 0xC, 0xD are refused.
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

from .decode import DecodeError, _byte_view, stamp_ns

PACKET_ENCODINGS = ("evt3", "mono", "libcaer", "libcaer_cmp")
OFFSET_ALPHA = 0.01  # event_camera_renderer's smoothing of the sensor -> ROS time offset
ROLLOVER_MIN_DROP = 10  # a TIME_HIGH this far below the previous one is a 24-bit rollover
_EVT3_UNSUPPORTED = (0x1, 0x9, 0xB, 0xC, 0xD)
_EVT3_UNSUPPORTED_BITS = np.uint16(sum(1 << c for c in _EVT3_UNSUPPORTED))  # bit c: code c


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


@dataclass
class Evt3Decoder:
    """A stateful EVT 3.0 decoder for one stream (state persists across packets)."""

    valid: bool = False  # a TIME_HIGH and then a TIME_LOW have been seen
    seen_high: bool = False
    high: int = 0  # time bits 23..12 of the last TIME_HIGH (12 bits)
    rollovers: int = 0
    low: int = 0
    y: int = 0
    base_x: int = 0
    polarity: int = 0

    def decode(self, data: Any, width: int, height: int) -> Events:
        w = _words(data, 2, "evt3")
        code = w >> 12
        # Codes 1, 9, 0xB-0xD: bit `code` of one constant (two passes; a table gather is slower).
        if ((_EVT3_UNSUPPORTED_BITS >> code) & 1).any():
            bad = next(c for c in _EVT3_UNSUPPORTED if (code == c).any())
            raise DecodeError("evt3_code", f"unsupported EVT 3.0 word type {bad:#x}")
        # One pass finds every time word; TIME_HIGH / TIME_LOW are told apart among those few.
        is_time_word = (code == 0x8) | (code == 0x6)
        time_words = np.flatnonzero(is_time_word)
        time_is_high = code[time_words] == 0x8
        hi_idx, lo_idx = time_words[time_is_high], time_words[~time_is_high]
        valid_from = 0
        if not self.valid:
            if not self.seen_high and not hi_idx.size:
                return Events.empty()  # no time yet: everything before it is discarded
            first_high = 0 if self.seen_high else int(hi_idx[0])
            lows = lo_idx[lo_idx > first_high] if not self.seen_high else lo_idx
            if not lows.size:
                self._update_time(w[hi_idx[hi_idx >= first_high]] & 0xFFF)
                self.seen_high = True
                return Events.empty()
            valid_from = int(lows[0])
            # Time words before the first valid time are state too; other words are dropped.
            hi_idx, lo_idx = hi_idx[hi_idx >= first_high], lo_idx[lo_idx >= valid_from]
        payload = w & 0xFFF  # uint16; values are widened where they are gathered

        # Time high with rollovers, one value per TIME_HIGH word.
        highs = payload[hi_idx].astype(np.int64)
        prev = np.concatenate([[self.high], highs[:-1]])
        roll = self.rollovers + np.cumsum((highs < prev) & (prev - highs > ROLLOVER_MIN_DROP))
        full_high = (roll << 24) | (highs << 12)
        high0 = (self.rollovers << 24) | (self.high << 12)

        n = w.size

        def at(mask: np.ndarray, values: np.ndarray, initial: int, pos: np.ndarray) -> np.ndarray:
            """The value of the last ``mask`` word at or before each position (else
            ``initial``). A running count of the words is faster than a binary search."""
            if not values.size:
                return np.full(pos.shape, initial, np.int64)
            j = np.cumsum(mask, dtype=np.int32)[pos] - 1
            if not j.size or j[0] >= 0:  # pos ascends, so j does: none before the first word
                return values[j]
            return np.where(j >= 0, values[np.maximum(j, 0)], initial)

        # The time after every time word (TIME_HIGH or TIME_LOW), then one lookup per event.
        if valid_from:
            is_time = np.zeros(n, bool)
            is_time[hi_idx] = is_time[lo_idx] = True
            t_idx = np.flatnonzero(is_time)
            t_is_high = code[t_idx] == 0x8
        else:
            is_time, t_idx, t_is_high = is_time_word, time_words, time_is_high
        high_rank = np.cumsum(t_is_high) - 1
        th = np.where(
            high_rank >= 0, full_high[np.maximum(high_rank, 0)] if highs.size else 0, high0
        )
        low_pos = np.where(~t_is_high, np.arange(t_idx.size), -1)
        low_last = np.maximum.accumulate(low_pos) if t_idx.size else low_pos
        tl = np.where(low_last >= 0, payload[t_idx[np.maximum(low_last, 0)]], self.low)
        t_val = (th | tl) * 1000

        def time_at(pos: np.ndarray) -> np.ndarray:
            return at(is_time, t_val, ((high0 | self.low) * 1000), pos)

        def first(mask: np.ndarray) -> np.ndarray:
            idx = np.flatnonzero(mask)
            return idx[idx >= valid_from] if valid_from else idx

        is_y_word = code == 0x0
        y_idx = first(is_y_word)
        y_val = payload[y_idx] & 0x7FF
        singles = first(code == 0x2)
        pos = singles
        xs = payload[singles] & 0x7FF
        ps = (payload[singles] >> 11) & 1
        base_idx = np.zeros(0, np.int64)
        if ((code >= 0x3) & (code <= 0x5)).any():
            base_idx = first(code == 0x3)
            vec = first((code == 0x4) | (code == 0x5))
            nbits = np.where(code[vec] == 0x4, 12, 8)
            before = np.cumsum(nbits) - nbits  # base increments of the vectors before each one
            before_ext = np.append(before, before[-1] + nbits[-1] if vec.size else 0)
            k_base = np.searchsorted(vec, base_idx)  # vectors before each base word
            j = np.searchsorted(base_idx, vec, side="right") - 1
            jj = np.maximum(j, 0)
            base_vals = payload[base_idx] & 0x7FF
            base = np.where(
                j >= 0,
                (base_vals[jj] if base_idx.size else 0) + before - before_ext[k_base[jj]]
                if base_idx.size
                else 0,
                self.base_x + before,
            )
            is_base = np.zeros(n, bool)
            is_base[base_idx] = True
            pol = at(is_base, (payload[base_idx] >> 11) & 1, self.polarity, vec)
            bits = (payload[vec][:, None] >> np.arange(12)) & 1
            bits[nbits == 8, 8:] = 0
            rows, cols = np.nonzero(bits)
            pos = np.concatenate([singles, vec[rows]])
            xs = np.concatenate([xs, base[rows] + cols])
            ps = np.concatenate([ps, pol[rows]])
            order = np.argsort(pos, kind="stable")
            pos, xs, ps = pos[order], xs[order], ps[order]
            # The base after this packet: the last base plus the vectors after it.
            if vec.size:
                self.base_x = int(base[-1] + nbits[-1])
                if base_idx.size and base_idx[-1] > vec[-1]:
                    self.base_x = int(base_vals[-1])
            elif base_idx.size:
                self.base_x = int(base_vals[-1])
            if base_idx.size:
                self.polarity = int((payload[base_idx[-1]] >> 11) & 1)
        if valid_from:
            is_y = np.zeros(n, bool)
            is_y[y_idx] = True
        else:
            is_y = is_y_word
        ys = at(is_y, y_val, self.y, pos)
        keep = (xs < width) & (ys < height)
        end = None  # the time after the last word: the last time word's, else the state's
        if n:
            end = int(t_val[-1]) if t_val.size else (high0 | self.low) * 1000
        ev = Events(
            time_at(pos[keep]),
            xs[keep].astype(np.uint16),
            ys[keep].astype(np.uint16),
            ps[keep].astype(np.uint8),
            end,
        )
        # The state after this packet.
        if highs.size:
            self.high, self.rollovers = int(highs[-1]), int(roll[-1])
        if lo_idx.size:
            self.low = int(payload[lo_idx[-1]])
        if y_idx.size:
            self.y = int(y_val[-1])
        self.valid = self.seen_high = True
        return ev

    def _update_time(self, highs: np.ndarray) -> None:
        for v in highs.tolist():
            if v < self.high and self.high - v > ROLLOVER_MIN_DROP:
                self.rollovers += 1
            self.high = v


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
