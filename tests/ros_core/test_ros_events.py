"""Event-camera decoders on hand-built words with known answers, and the accumulating stream."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros.core.decode import DecodeError
from anyseg_ros.core.events import (
    EventStream,
    Evt3Decoder,
    Evt3Encoder,
    decode_dvs,
    decode_libcaer,
    decode_libcaer_cmp,
    decode_mono,
)


def words(*w: int) -> bytes:
    return np.array(w, "<u2").tobytes()


def test_evt3_hand_built_words():
    dec = Evt3Decoder()
    first = words(
        0x2001,  # ADDR_X before any time: discarded
        0x8005,  # TIME_HIGH 5
        0x0007,  # ADDR_Y before the first TIME_LOW: discarded too
        0x6003,  # TIME_LOW 3 -> t = 5 * 4096 + 3 us
        0x000A,  # ADDR_Y 10
        0x2805,  # ADDR_X 5, polarity 1
        0x3064,  # VECT_BASE_X 100, polarity 0
        0x4005,  # VECT_12 bits 0 and 2 -> x 100, 102; base -> 112
        0x5081,  # VECT_8 bits 0 and 7 -> x 112, 119; base -> 120
        0xE014,  # OTHERS and CONTINUED words are ignored
        0xF123,
    )
    ev = dec.decode(first, 640, 480)
    t = (5 * 4096 + 3) * 1000
    assert ev.x.tolist() == [5, 100, 102, 112, 119]
    assert ev.y.tolist() == [10] * 5 and ev.p.tolist() == [1, 0, 0, 0, 0]
    assert ev.t.tolist() == [t] * 5
    # State carries over: row, vector base and polarity, time.
    ev = dec.decode(words(0x4001, 0x2003, 0x6010), 640, 480)
    assert ev.x.tolist() == [120, 3] and ev.y.tolist() == [10, 10] and ev.t.tolist() == [t, t]
    assert ev.end_t == (5 * 4096 + 0x10) * 1000
    # A TIME_HIGH far below the previous one is a 24-bit rollover; a small step back is not.
    ev = dec.decode(words(0x8FFF, 0x6000, 0x2001, 0x8FFA, 0x2002, 0x8000, 0x2003), 640, 480)
    assert ev.t.tolist() == [0xFFF000 * 1000, 0xFFA000 * 1000, (1 << 24) * 1000]
    assert dec.rollovers == 1
    # Out of the sensor: dropped.
    # x 640 >= width; then row 768 >= height
    assert dec.decode(words(0x2280, 0x2001, 0x0300, 0x2001), 640, 480).x.tolist() == [1]
    with pytest.raises(DecodeError) as e:
        dec.decode(words(0x9000), 640, 480)
    assert e.value.reason == "evt3_code"
    with pytest.raises(DecodeError) as e:
        dec.decode(b"\x00\x80\x01", 640, 480)
    assert e.value.reason == "event_size"


def test_evt3_waits_for_time_high_then_low_across_packets():
    dec = Evt3Decoder()
    assert len(dec.decode(words(0x2001, 0x6001), 64, 64)) == 0
    assert len(dec.decode(words(0x8002, 0x2001), 64, 64)) == 0  # high but no low yet
    ev = dec.decode(words(0x6004, 0x2009), 64, 64)
    assert ev.x.tolist() == [9] and ev.t.tolist() == [(2 * 4096 + 4) * 1000]


def test_evt3_encoder_round_trip_over_a_rollover_in_many_packets():
    rng = np.random.default_rng(3)
    n = 30_000
    t = np.sort(rng.integers(16_500_000, 17_100_000, n))  # crosses 2^24 us = 16.777 s
    x, y, p = rng.integers(0, 320, n), rng.integers(0, 240, n), rng.integers(0, 2, n)
    enc, dec = Evt3Encoder(), Evt3Decoder()
    out = []
    for a, b in zip(range(0, n, 3000), range(3000, n + 3000, 3000), strict=True):
        out.append(dec.decode(enc.encode(t[a:b], x[a:b], y[a:b], p[a:b]).tobytes(), 320, 240))
    assert dec.rollovers == 1
    np.testing.assert_array_equal(np.concatenate([o.t for o in out]), t * 1000)
    np.testing.assert_array_equal(np.concatenate([o.x for o in out]), x)
    np.testing.assert_array_equal(np.concatenate([o.y for o in out]), y)
    np.testing.assert_array_equal(np.concatenate([o.p for o in out]), p)


def _random_words(rng: np.random.Generator, n: int) -> np.ndarray:
    """Every word type the decoder accepts, small TIME_HIGH values now and then (rollovers)."""
    codes = rng.choice([0x0, 0x2, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x8, 0xA, 0xE, 0xF], n)
    vals = rng.integers(0, 4096, n)
    vals = np.where((codes == 0x8) & (rng.random(n) < 0.5), rng.integers(0, 30, n), vals)
    return ((codes << 12) | vals).astype("<u2")


def test_evt3_packet_boundaries_anywhere_and_the_uncompiled_loop_agree():
    from anyseg_ros.core.events import _evt3_words

    rng = np.random.default_rng(5)
    for _ in range(30):
        w = _random_words(rng, 3000)
        one = Evt3Decoder()
        whole = one.decode(w.tobytes(), 700, 500)
        dec, parts = Evt3Decoder(), []
        for part in np.split(w, np.sort(rng.integers(0, w.size, 6))):
            parts.append(dec.decode(part.tobytes(), 700, 500))
        assert len(whole) > 0 and dec.state.tolist() == one.state.tolist()
        for f in "txyp":
            np.testing.assert_array_equal(
                np.concatenate([getattr(p, f) for p in parts]), getattr(whole, f)
            )
        assert parts[-1].end_t == whole.end_t
        # The same loop run as plain Python (what runs where numba is not installed).
        state = np.zeros(8, np.int64)
        t, x, y, p, n, bad = _evt3_words.py_func(w, state, 700, 500)
        assert bad == 0 and n == len(whole)
        np.testing.assert_array_equal(t[:n], whole.t)
        np.testing.assert_array_equal(x[:n], whole.x)
        np.testing.assert_array_equal(y[:n], whole.y)
        np.testing.assert_array_equal(p[:n], whole.p)


def test_evt3_refused_packet_leaves_the_state_alone():
    dec = Evt3Decoder()
    dec.decode(words(0x8005, 0x6003, 0x000A, 0x3064), 640, 480)
    before = dec.state.copy()
    with pytest.raises(DecodeError, match="0xb"):
        dec.decode(words(0x8006, 0x0001, 0xB000, 0x2001), 640, 480)
    np.testing.assert_array_equal(dec.state, before)


def test_mono_libcaer_and_libcaer_cmp_known_answers():
    ev = np.array([(1 << 63) | (7 << 48) | (300 << 32) | 1500, (2 << 48) | (4 << 32) | 9], "<u8")
    m = decode_mono(ev.tobytes(), time_base=10**9)
    assert m.x.tolist() == [300, 4] and m.y.tolist() == [7, 2] and m.p.tolist() == [1, 0]
    assert m.t.tolist() == [10**9 + 1500, 10**9 + 9]

    rec = np.zeros(3, [("data", "<u4"), ("ts", "<i4")])
    rec["data"] = [(5 << 17) | (6 << 2) | 2, (7 << 17) | (8 << 2), 1 << 17]
    rec["ts"] = [2_000_000_000, 2_100_000_000, 5]  # the third wrapped (int32 microseconds)
    c = decode_libcaer(rec.tobytes(), time_base=0)
    assert c.x.tolist() == [5, 7, 1] and c.y.tolist() == [6, 8, 0] and c.p.tolist() == [1, 0, 0]
    assert c.t.tolist() == [2_000_000_000_000, 2_100_000_000_000, (5 + (1 << 31)) * 1000]

    cmp_words = words(
        0x0001,  # TIME_HIGH: dt bits 23..12 = 1
        0x1002,  # TIME_LOW 2 -> dt = 4098 us
        0x2010,  # ADDR_X 16
        0x3805,  # ADDR_Y 5, polarity 1 -> event (16, 5)
        0x4008,  # VECT_BASE_Y 8, polarity 0
        0x5003,  # VECT_8 bits 0, 1 -> y 8, 9; base -> 16
        0x5001,  # -> y 16
    )
    k = decode_libcaer_cmp(cmp_words, time_base=1000)
    assert k.x.tolist() == [16] * 4 and k.y.tolist() == [5, 8, 9, 16]
    assert k.p.tolist() == [1, 0, 0, 0] and k.t.tolist() == [1000 + 4_098_000] * 4


def test_dvs_event_array():
    evs = [
        NS(x=3, y=4, ts=NS(sec=2, nanosec=5), polarity=True),
        NS(x=1, y=0, ts=NS(sec=2, nanosec=9), polarity=False),
    ]
    d = decode_dvs(evs)
    assert d.x.tolist() == [3, 1] and d.t.tolist() == [2 * 10**9 + 5, 2 * 10**9 + 9]
    with pytest.raises(DecodeError):
        decode_dvs([NS(x=-1, y=0, ts=NS(sec=0, nanosec=0), polarity=True)])


def header(ns: int):
    return NS(stamp=NS(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="event_optical")


def packet(words_: np.ndarray, stamp_ns: int, w=32, h=24):
    return NS(
        header=header(stamp_ns),
        width=w,
        height=h,
        seq=0,
        time_base=0,
        encoding="evt3",
        is_bigendian=False,
        events=words_.tobytes(),
    )


def test_stream_time_offset_and_window_accumulation():
    """Sensor time -> ROS time from header.stamp; frames are ON - OFF over the window."""
    stream = EventStream(max_pixels=10_000)
    enc = Evt3Encoder()
    ros0 = 1_700_000_000 * 10**9
    sensor0 = 5_000_000  # us: the sensor clock's own origin
    # 10 packets of 10 ms; pixel (2, 3) gets one ON per packet, pixel (5, 1) one OFF per packet.
    for k in range(10):
        t = np.array([sensor0 + k * 10_000 + 1, sensor0 + k * 10_000 + 2])
        wds = enc.encode(t, [2, 5], [3, 1], [1, 0], end_us=sensor0 + (k + 1) * 10_000)
        end = stream.add_packet(packet(wds, ros0 + k * 10_000_000 + 1_000))
    assert stream.offset_ns == pytest.approx(ros0 - sensor0 * 1000, abs=1)
    assert end == pytest.approx(ros0 + 100_000_000, abs=2)
    f = stream.frame(ros0 + 100_000_000, 30_000_000)  # the last three packets
    assert f.dtype == np.int16 and f.shape == (24, 32)
    assert f[3, 2] == 3 and f[1, 5] == -3 and np.count_nonzero(f) == 2
    with pytest.raises(DecodeError) as e:
        stream.add_packet(packet(wds, ros0, w=64))
    assert e.value.reason == "geometry"
    with pytest.raises(DecodeError) as e:
        EventStream(max_pixels=100).add_packet(packet(wds, ros0))
    assert e.value.reason == "too_large"


def test_stream_memory_is_bounded():
    stream = EventStream(max_pixels=10_000, horizon_ns=10**12, max_events=50)
    enc = Evt3Encoder()
    for k in range(10):
        t = np.arange(20) + k * 100
        stream.add_packet(packet(enc.encode(t, t % 32, t % 24, t % 2), 10**9 + k * 100_000))
    assert sum(len(c) for c in stream._chunks) <= 50 and stream.overflow == 200 - 40
