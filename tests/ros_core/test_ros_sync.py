"""ModalitySynchronizer with integer stamp tables (no ROS, no spin)."""

from __future__ import annotations

import itertools
import random

import pytest

from anyseg_ros.core.sync import DROP_REASONS, FrameSet, ModalitySynchronizer

MS = 1_000_000
S = 1_000_000_000
ALL = ("rgb", "depth", "event", "lidar")


def make(modalities=ALL, slop_ms=10, timeout_ms=500, wait_ms=50, **kw) -> ModalitySynchronizer:
    timeout = (
        {m: int(t * MS) for m, t in timeout_ms.items()}
        if isinstance(timeout_ms, dict)
        else int(timeout_ms * MS)
    )
    return ModalitySynchronizer(modalities, int(slop_ms * MS), timeout, int(wait_ms * MS), **kw)


def feed(sync, arrivals, end_ns=None) -> list[FrameSet]:
    """arrivals: (arrival_ns, modality, stamp_ns), pushed in arrival order; payload = (mod, stamp).
    Finally polls far enough ahead that every wait has run out."""
    out = []
    last = 0
    for now, mod, stamp in sorted(arrivals, key=lambda a: a[0]):
        out += sync.push(mod, stamp, (mod, stamp), now)
        last = now
    out += sync.poll(last + sync.wait_ns if end_ns is None else end_ns)
    return out


def stamps_of(fs: FrameSet) -> dict[str, int]:
    return {m: s for m, (s, _) in fs.items.items()}


def at_ms(table: dict[str, list[float]], latency_ms: float = 1.0):
    """Stamp table in ms -> arrivals with a fixed latency."""
    return [(int((t + latency_ms) * MS), m, int(t * MS)) for m, ts in table.items() for t in ts]


# ---------------------------------------------------------------- message_filters reference


class MessageFiltersApproximate:
    """The matching logic of message_filters.ApproximateTimeSynchronizer (ros2/message_filters,
    Python) with integer stamps: on every message, pick for each other queue the candidates within
    slop sorted by distance, take the first combination (itertools.product order) spanning less
    than slop, emit it and delete its messages. Queues keep the newest ``queue_size`` stamps."""

    def __init__(self, n: int, queue_size: int, slop_ns: int) -> None:
        self.queues: list[dict[int, object]] = [{} for _ in range(n)]
        self.queue_size, self.slop = queue_size, slop_ns

    def add(self, index: int, stamp: int) -> list[tuple[int, ...]]:
        queue = self.queues[index]
        queue[stamp] = stamp
        while len(queue) > self.queue_size:
            del queue[min(queue)]
        candidates = []
        for j, q in enumerate(self.queues):
            if j == index:
                continue
            near = sorted(
                ((s, abs(s - stamp)) for s in q if abs(s - stamp) <= self.slop), key=lambda x: x[1]
            )
            if not near:
                return []
            candidates.append([s for s, _ in near])
        for combo in itertools.product(*candidates):
            vv = list(combo)
            vv.insert(index, stamp)
            if max(vv) - min(vv) < self.slop and all(
                t in q for q, t in zip(self.queues, vv, strict=True)
            ):
                for q, t in zip(self.queues, vv, strict=True):
                    del q[t]
                return [tuple(vv)]
        return []


def random_streams(seed, rates, seconds=3.0, jitter_ms=2.0, latency_ms=(0.0, 20.0), drop=0.1):
    """Arrivals of sensors at ``rates`` (Hz) with stamp jitter, per-message latency and random
    message loss. Each stream arrives in stamp order (DDS keeps a writer's order)."""
    rng = random.Random(seed)
    arrivals = []
    for mod, hz in rates.items():
        period = S / hz
        phase = rng.uniform(0, 3 * MS)
        last_arrival = 0
        for k in range(int(seconds * hz)):
            stamp = int(S + k * period + phase + rng.uniform(-jitter_ms, jitter_ms) * MS)
            if rng.random() < drop:
                continue
            arrival = max(last_arrival + 1, stamp + int(rng.uniform(*latency_ms) * MS))
            last_arrival = arrival
            arrivals.append((arrival, mod, stamp))
    return sorted(arrivals)


def reference_sets(arrivals, modalities, slop_ns):
    ref = MessageFiltersApproximate(len(modalities), queue_size=100, slop_ns=slop_ns)
    out = []
    for _, mod, stamp in arrivals:
        out += ref.add(modalities.index(mod), stamp)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "rates",
    [
        {"rgb": 30, "depth": 30, "event": 30, "lidar": 10},
        {"rgb": 30, "depth": 30, "event": 30, "lidar": 30},
        {"rgb": 15, "depth": 30, "event": 30, "lidar": 10},
    ],
)
def test_complete_sets_match_message_filters(seed, rates):
    slop = 10 * MS  # below half of the fastest period minus jitter: the documented regime
    arrivals = random_streams(seed, rates, seconds=6.0)
    ours = feed(make(slop_ms=10), arrivals)
    complete = {tuple(stamps_of(fs)[m] for m in ALL) for fs in ours if len(fs.items) == 4}
    expected = set(reference_sets(arrivals, ALL, slop))
    assert len(expected) >= 12  # enough sets that a difference would show
    assert complete == expected


def test_stamp_table_nearest_within_slop():
    table = {
        "rgb": [0, 33, 67, 100],
        "depth": [2, 35, 64, 103],
        "lidar": [1, 99],
    }
    sets = feed(make(("rgb", "depth", "lidar")), at_ms(table))
    got = [tuple(sorted(stamps_of(fs).items())) for fs in sets]
    ms = lambda **kw: tuple(sorted((k, int(v * MS)) for k, v in kw.items()))  # noqa: E731
    assert got == [
        ms(rgb=0, depth=2, lidar=1),
        ms(rgb=33, depth=35),
        ms(rgb=67, depth=64),
        ms(rgb=100, depth=103, lidar=99),
    ]
    assert all(fs.anchor == "rgb" for fs in sets)
    # message_filters emits only the complete ones, and the same ones.
    ref = reference_sets(sorted(at_ms(table)), ("rgb", "depth", "lidar"), 10 * MS)
    assert ref == [(0, 2 * MS, 1 * MS), (100 * MS, 103 * MS, 99 * MS)]


def test_picks_the_nearest_candidate():
    sync = make(("rgb", "depth"), slop_ms=10)
    table = {"depth": [90, 97, 104], "rgb": [100, 111]}
    arrivals = [
        (int(110 * MS), "depth", 90 * MS),
        (int(110 * MS), "depth", 97 * MS),
        (int(110 * MS), "depth", 104 * MS),
    ]
    arrivals += [(int(112 * MS), "rgb", 100 * MS), (int(120 * MS), "rgb", 111 * MS)]
    del table
    sets = feed(sync, arrivals)
    assert [stamps_of(fs) for fs in sets] == [
        {"rgb": 100 * MS, "depth": 97 * MS},
        {"rgb": 111 * MS, "depth": 104 * MS},  # 104 was not used by the first set
    ]


def test_each_message_used_once_and_goes_to_the_nearer_anchor():
    # depth 108 is within slop of both rgb 100 and rgb 112; it belongs to the nearer (112).
    sync = make(("rgb", "depth"), slop_ms=10, wait_ms=100)
    arrivals = [
        (101 * MS, "rgb", 100 * MS),
        (113 * MS, "rgb", 112 * MS),
        (114 * MS, "depth", 108 * MS),
    ]
    sets = feed(sync, arrivals)
    assert [stamps_of(fs) for fs in sets] == [
        {"rgb": 100 * MS},
        {"rgb": 112 * MS, "depth": 108 * MS},
    ]
    used = [s for fs in sets for s in stamps_of(fs).items()]
    assert len(used) == len(set(used))


def test_set_spans_less_than_slop_like_message_filters():
    # depth and lidar are each 12 ms from rgb, but 24 ms from each other: only the nearer-first
    # (tie -> canonical order: depth) joins.
    sync = make(("rgb", "depth", "lidar"), slop_ms=15)
    sets = feed(sync, at_ms({"rgb": [100], "depth": [112], "lidar": [88]}))
    assert [stamps_of(fs) for fs in sets] == [{"rgb": 100 * MS, "depth": 112 * MS}]


def test_sets_come_out_in_stamp_order_and_use_each_message_once():
    arrivals = random_streams(
        7, {"rgb": 30, "depth": 25, "event": 60, "lidar": 10}, latency_ms=(0, 80), drop=0.2
    )
    sync = make(slop_ms=20, wait_ms=30)
    sets = feed(sync, arrivals)
    assert len(sets) > 50
    assert [fs.stamp_ns for fs in sets] == sorted({fs.stamp_ns for fs in sets})
    used = [(m, s) for fs in sets for m, s in stamps_of(fs).items()]
    assert len(used) == len(set(used))
    for fs in sets:
        st = stamps_of(fs)
        assert st[fs.anchor] == fs.stamp_ns
        assert max(st.values()) - min(st.values()) < 20 * MS
    # Everything pushed is accounted for: used, dropped with a reason, or still buffered.
    pushed = len(arrivals)
    assert (
        len(used) + sum(sync.drops.values()) + sum(len(b) for b in sync._buffers.values()) == pushed
    )


# ---------------------------------------------------------------- waiting


def test_waits_for_a_late_alive_sensor_at_most_wait():
    sync = make(("rgb", "lidar"), wait_ms=50)
    assert len(feed(sync, at_ms({"rgb": [0], "lidar": [0]}))) == 1
    assert sync.push("rgb", 100 * MS, "r1", 101 * MS) == []  # lidar alive: wait for it
    assert sync.poll(150 * MS) == []  # 49 ms after arrival
    (fs,) = sync.poll(151 * MS)  # wait ran out: emitted without lidar
    assert fs.modalities == ("rgb",)
    # The late lidar message can no longer join a set: it ages out, counted.
    assert sync.push("lidar", 100 * MS, "late", 160 * MS) == []
    sync.push("rgb", 200 * MS, "r2", 201 * MS)
    sync.poll(300 * MS)
    assert sync.drops["unmatched"] == 1


def test_wait_ends_as_soon_as_every_alive_sensor_is_settled():
    sync = make(("rgb", "depth", "lidar"), wait_ms=1000)
    feed(sync, at_ms({"rgb": [0], "depth": [0], "lidar": [0]}))
    assert sync.push("rgb", 100 * MS, "r", 101 * MS) == []
    assert sync.push("depth", 101 * MS, "d", 102 * MS) == []  # lidar still alive, not settled
    (fs,) = sync.push(
        "lidar", 150 * MS, "l", 103 * MS
    )  # a lidar stamp past 100: nothing nearer can come
    assert fs.modalities == ("rgb", "depth")


def test_a_slower_sensor_does_not_hold_up_frames_between_its_messages():
    # 30 Hz camera, 10 Hz LiDAR, generous wait: once the LiDAR's period is known, a camera frame
    # whose slop window ends before the next sweep can start is emitted at once.
    sync = make(("rgb", "lidar"), slop_ms=10, wait_ms=1000)
    emitted_at = {}
    for k in range(40):
        t = k * 100 * MS // 3
        for mod in ("lidar", "rgb") if k % 3 == 0 else ("rgb",):
            for fs in sync.push(mod, t, mod, t + 1 * MS):
                emitted_at[fs.stamp_ns] = t + 1 * MS
    late = [k for k in range(12, 39) if emitted_at[k * 100 * MS // 3] != k * 100 * MS // 3 + 1 * MS]
    # Frames just after a sweep go at once; the ones within reach of the next sweep wait for it.
    assert [k % 3 for k in late] == [2] * len(late) and len(late) == 9


def test_never_waits_for_a_stale_sensor():
    sync = make(("rgb", "lidar"), timeout_ms={"rgb": 500, "lidar": 100}, wait_ms=50)
    feed(sync, at_ms({"rgb": [0], "lidar": [0]}))
    assert sync.health(50 * MS)["lidar"] == "alive"
    assert sync.push("rgb", 50 * MS, "r", 50 * MS) == []  # waits for alive lidar
    sync.poll(120 * MS)
    assert sync.health(200 * MS) == {"rgb": "alive", "lidar": "stale"}
    (fs,) = sync.push("rgb", 200 * MS, "r", 201 * MS)  # immediately, no wait
    assert fs.modalities == ("rgb",)


def test_start_up_waits_for_sensors_not_heard_yet_then_never_for_offline_ones():
    sync = make(("rgb", "depth", "lidar"), timeout_ms=500, wait_ms=50)
    # Start-up: rgb arrives a little before the others; it waits for them (bounded by wait).
    assert sync.push("rgb", 0, "r", 1 * MS) == []
    assert sync.push("depth", 1 * MS, "d", 3 * MS) == []
    (fs,) = sync.poll(51 * MS)  # lidar never came: wait ran out
    assert fs.modalities == ("rgb", "depth")
    # After the start-up window (the timeout) an offline sensor is simply absent.
    sync.push("depth", 300 * MS, "d", 301 * MS)
    sync.push("rgb", 300 * MS, "r", 302 * MS)
    sync.push("depth", 600 * MS, "d", 601 * MS)
    (fs,) = sync.push("rgb", 600 * MS, "r", 602 * MS)
    assert fs.modalities == ("rgb", "depth") and sync.health(602 * MS)["lidar"] == "offline"


# ---------------------------------------------------------------- anchor fallback and take-over


def test_anchor_falls_back_and_takes_over_again():
    sync = make(("rgb", "depth", "lidar"), timeout_ms=200, wait_ms=20)
    period = 50 * MS
    sets, events = [], []
    for k in range(60):  # 3 s at 20 Hz; rgb silent from 1.0 s to 2.0 s
        t = k * period
        for mod in ("depth", "lidar", "rgb"):
            if mod == "rgb" and 1 * S <= t < 2 * S:
                continue
            sets += sync.push(mod, t, mod, t + 2 * MS)
        sets += sync.poll(t + 30 * MS)
        events += [str(e) for e in sync.events()]
    anchors = [(fs.stamp_ns, fs.anchor) for fs in sets]
    assert all(a == "rgb" for t, a in anchors if t < 1 * S)
    assert all(a == "rgb" for t, a in anchors if t >= 2 * S + period)
    during = [(t, a) for t, a in anchors if 1 * S <= t < 2 * S]
    assert during and all(a == "depth" for _, a in during)
    # No frame lost while rgb was silent: depth anchors cover the gap, each without rgb.
    assert {t for t, _ in during} == set(range(1 * S, 2 * S, period))
    assert "sensor rgb: alive -> stale" in events
    assert "anchor: rgb -> depth" in events and "anchor: depth -> rgb" in events
    assert events.count("anchor: rgb -> depth") == 1
    assert sync.resets == 0
    assert [fs.stamp_ns for fs in sets] == sorted(fs.stamp_ns for fs in sets)


def test_events_say_which_changes_are_degradations():
    sync = make(("rgb", "depth"), timeout_ms=100, wait_ms=0)
    sync.push("depth", 0, "d", 0)
    sync.push("rgb", 0, "r", 0)
    for k in range(1, 5):  # rgb goes silent
        sync.push("depth", k * 50 * MS, "d", k * 50 * MS)
    sync.push("rgb", 250 * MS, "r", 250 * MS)
    got = [(str(e), e.degraded) for e in sync.events()]
    assert got == [
        ("sensor depth: offline -> alive", False),
        ("anchor: None -> depth", False),
        ("sensor rgb: offline -> alive", False),
        ("anchor: depth -> rgb", False),
        ("sensor rgb: alive -> stale", True),
        ("anchor: rgb -> depth", True),
        ("sensor rgb: stale -> alive", False),
        ("anchor: depth -> rgb", False),
    ]


def test_anchor_priority_is_configurable():
    sync = make(("rgb", "lidar"), anchor_priority=("lidar", "rgb"))
    sets = feed(sync, at_ms({"rgb": [0, 33, 67, 100], "lidar": [1, 101]}))
    assert [fs.anchor for fs in sets] == ["lidar", "lidar"]
    assert [stamps_of(fs) for fs in sets] == [
        {"rgb": 0, "lidar": 1 * MS},
        {"rgb": 100 * MS, "lidar": 101 * MS},
    ]


def test_unlisted_modalities_never_anchor():
    sync = make(("rgb", "depth"), anchor_priority=("rgb",))
    assert feed(sync, at_ms({"depth": [0, 33, 67]})) == []
    assert sync.anchor(70 * MS) is None


# ---------------------------------------------------------------- health


def test_health_offline_alive_stale_alive_with_events_once():
    sync = make(("rgb", "lidar"), timeout_ms={"rgb": 1000, "lidar": 100})
    assert sync.health(0) == {"rgb": "offline", "lidar": "offline"}
    sync.push("lidar", 0, "l", 0)
    sync.push("rgb", 0, "r", 0)
    assert sync.health(100 * MS)["lidar"] == "alive"  # exactly at the timeout: still alive
    assert sync.health(101 * MS) == {"rgb": "alive", "lidar": "stale"}
    sync.poll(101 * MS)
    sync.poll(150 * MS)
    sync.push("lidar", 160 * MS, "l", 160 * MS)
    kinds = [(e.kind, e.modality, e.old, e.new) for e in sync.events()]
    assert kinds == [
        ("health", "lidar", "offline", "alive"),
        ("anchor", None, None, "lidar"),
        ("health", "rgb", "offline", "alive"),
        ("anchor", None, "lidar", "rgb"),
        ("health", "lidar", "alive", "stale"),
        ("health", "lidar", "stale", "alive"),
    ]
    assert sync.events() == []  # drained


# ---------------------------------------------------------------- bad input


def test_duplicate_and_out_of_order_stamps_are_dropped_and_counted():
    sync = make(("rgb", "depth"), wait_ms=0)
    sync.push("depth", 100 * MS, "d", 101 * MS)
    sync.push("depth", 100 * MS, "dup", 102 * MS)
    sync.push("depth", 90 * MS, "old", 103 * MS)
    assert sync.drops["duplicate"] == 1 and sync.drops["out_of_order"] == 1
    sets = sync.push("depth", 120 * MS, "d", 121 * MS)
    assert [fs.payload("depth") for fs in sets] == ["d"]  # still flowing


def test_far_future_stamps_are_dropped():
    sync = make(("rgb",), max_future_ns=1 * S)
    assert sync.push("rgb", 5 * S, "future", 1 * S) == []
    assert sync.drops["future"] == 1
    # The sensor is alive (it is sending); its clock is what is wrong, and diagnostics say so.
    assert sync.health(1 * S)["rgb"] == "alive"
    assert len(sync.push("rgb", 1 * S, "ok", 1 * S)) == 1  # not wedged by the future stamp


def test_backward_clock_jump_resets():
    sync = make(("rgb", "depth"), wait_ms=10)
    t0 = 100 * S
    for k in range(10):
        feed_t = t0 + k * 50 * MS
        sync.push("rgb", feed_t, "r", feed_t)
    sync.push("depth", t0 + 600 * MS, "pending", t0 + 600 * MS)
    sync.events()
    # Bag loop with use_sim_time: clock and stamps start over.
    sets = sync.push("rgb", 1 * S, "again", 1 * S + MS)
    assert sync.resets == 1 and sync.drops["reset"] >= 1
    sets += sync.poll(1 * S + 20 * MS)  # start-up again: it waited for depth
    assert [fs.payload("rgb") for fs in sets] == ["again"]
    assert any(e.kind == "reset" and "clock" in e.detail for e in sync.events())


def test_small_clock_step_back_is_clamped_not_reset():
    sync = make(("rgb",))
    sync.push("rgb", 10 * MS, "a", 20 * MS)
    assert sync.push("rgb", 11 * MS, "b", 19 * MS)  # 1 ms back: clamped
    assert sync.resets == 0


def test_stamps_jumping_far_back_reset_instead_of_wedging():
    # A bag replayed in a loop without sim time: stamps restart, the clock does not.
    sync = make(("rgb", "depth"), wait_ms=0)
    now = 1000 * S
    for k in range(5):
        sync.push("rgb", 10 * S + k * 33 * MS, "r", now)
        now += 33 * MS
    out = []
    for k in range(5):
        out += sync.push("rgb", 2 * S + k * 33 * MS, "loop", now)
        now += 33 * MS
    assert sync.resets == 1
    # The first two far-back stamps could have been single bad messages: dropped; the third
    # confirms the restart and every looped frame from it comes out.
    assert sync.drops["out_of_order"] == 2 and len(out) == 3


def test_a_single_stamp_far_back_is_dropped_without_a_reset():
    sync = make(("rgb", "depth"), wait_ms=0)
    out = []
    for k in range(10):
        t = 10 * S + k * 50 * MS
        stamp = 2 * S if k == 4 else t  # one message stamped 8 s back
        out += sync.push("rgb", stamp, k, t + MS)
    assert sync.resets == 0 and sync.drops["out_of_order"] == 1
    assert [fs.payload("rgb") for fs in out] == [0, 1, 2, 3, 5, 6, 7, 8, 9]


def test_late_messages_are_counted():
    sync = make(("rgb", "depth"), wait_ms=0)
    sync.push("rgb", 1000 * MS, "r", 1000 * MS)
    sync.push("depth", 900 * MS, "d", 1001 * MS)
    assert sync.drops["late"] == 1


def test_unmatched_messages_age_out():
    sync = make(("rgb", "depth"), wait_ms=0)
    sync.push("rgb", 0, "r0", 1 * MS)
    sync.push("depth", 50 * MS, "far", 51 * MS)  # no rgb within slop of it
    (fs,) = sync.push("rgb", 100 * MS, "r1", 101 * MS)
    assert fs.modalities == ("rgb",)
    assert sync.drops["unmatched"] == 1
    assert all(len(b) == 0 for b in sync._buffers.values())


def test_buffer_overflow_drops_oldest():
    sync = make(("rgb", "depth"), anchor_priority=("rgb",), max_buffer=4)
    for k in range(10):
        sync.push("depth", k * MS, k, k * MS)
    assert sync.drops["overflow"] == 6
    (fs,) = sync.push("rgb", 9 * MS, "r", 10 * MS)
    assert fs.payload("depth") == 9


def _provoke(reason: str) -> ModalitySynchronizer:
    """A fresh synchroniser fed the smallest input that drops one message for ``reason``."""
    sync = make(("rgb", "depth"), wait_ms=0, max_buffer=2, max_future_ns=1 * S)
    if reason in ("duplicate", "out_of_order"):
        sync.push("depth", 100 * MS, "d", 101 * MS)
        sync.push("depth", 100 * MS if reason == "duplicate" else 90 * MS, "bad", 102 * MS)
    elif reason == "future":
        sync.push("rgb", 5 * S, "future", 1 * S)
    elif reason == "ahead":
        for k in range(4):
            sync.push("depth", k * 50 * MS, k, k * 50 * MS + MS)
        sync.push("depth", 800 * MS, "ahead", 200 * MS)  # 0.6 s ahead of its stream
    elif reason == "late":
        sync.push("rgb", 1000 * MS, "r", 1000 * MS)
        sync.push("depth", 900 * MS, "d", 1001 * MS)
    elif reason == "unmatched":
        sync.push("rgb", 0, "r0", 1 * MS)
        sync.push("depth", 50 * MS, "far", 51 * MS)
        sync.push("rgb", 100 * MS, "r1", 101 * MS)
    elif reason == "overflow":
        sync = make(("rgb", "depth"), anchor_priority=("rgb",), max_buffer=2)
        for k in range(3):
            sync.push("depth", k * MS, k, k * MS)
    elif reason == "memory":
        sync = make(
            ("rgb", "depth"), anchor_priority=("rgb",), max_buffer_bytes=10, payload_bytes=len
        )
        for k in range(3):  # 4 bytes each: the third goes over 10, the oldest goes
            sync.push("depth", k * MS, "dddd", k * MS)
    elif reason == "reset":
        sync = make(("rgb", "depth"), anchor_priority=("rgb",))
        sync.push("depth", 100 * S, "pending", 100 * S)
        sync.push("rgb", 1 * S, "again", 1 * S)  # the clock jumped back
    return sync


@pytest.mark.parametrize("reason", DROP_REASONS)
def test_each_drop_reason_counts_exactly_its_own_drops(reason):
    drops = _provoke(reason).drops
    assert set(drops) == set(DROP_REASONS)
    assert {r: n for r, n in drops.items() if n} == {reason: 1}


def test_waiting_messages_never_hold_more_than_max_buffer_bytes():
    """Issue 14 item 4: with 64 slots per sensor at the size cap a node could hold gigabytes;
    the bytes of all waiting messages together are bounded, the oldest going first."""
    sync = make(
        ("rgb", "depth", "lidar"),
        anchor_priority=("rgb",),
        max_buffer=64,
        max_buffer_bytes=1000,
        payload_bytes=len,
    )
    peak = 0
    for k in range(200):  # rgb never comes: depth and lidar pile up waiting for an anchor
        sync.push("depth", k * MS, "d" * 30, k * MS)
        sync.push("lidar", k * MS + 1, "l" * 70, k * MS + 1)
        peak = max(peak, sync.buffered_bytes)
        assert sync.buffered_bytes == sum(len(m.payload) for b in sync._buffers.values() for m in b)
    assert peak <= 1000 and sync.drops["memory"] > 0
    # The newest of each stream is still there (what a frame set would take first).
    assert sync._buffers["depth"][-1].stamp == 199 * MS
    (fs,) = sync.push("rgb", 199 * MS, "r", 199 * MS + 2)
    assert fs.modalities == ("rgb", "depth", "lidar")
    # What is still waiting (within slop of later anchors) is counted exactly.
    assert sync.buffered_bytes == sum(len(m.payload) for b in sync._buffers.values() for m in b)


def test_unknown_modality_and_bad_arguments():
    sync = make(("rgb",))
    with pytest.raises(KeyError, match="lidar"):
        sync.push("lidar", 0, None, 0)
    with pytest.raises(ValueError, match="modalities"):
        make(("rgb", "thermal"))
    with pytest.raises(ValueError, match="anchor_priority"):
        make(("rgb",), anchor_priority=("depth",))
    with pytest.raises(ValueError, match="slop_ns"):
        make(slop_ms=0)
    with pytest.raises(ValueError, match="timeout"):
        make(("rgb", "depth"), timeout_ms={"rgb": 100})
