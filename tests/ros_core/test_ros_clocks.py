"""The synchroniser against sensors that lie about time (integer stamps, no ROS): a single
mis-stamped message costs only itself, extra messages do not make frames wait, sensors on another
clock are reported and not waited for, unsynchronised ones stop being waited for, and max_age
lets a slower sensor serve every frame."""

from __future__ import annotations

import random
import statistics

import pytest

from anyseg_ros.core.clocks import ClockOffsets, JoinTracker, median
from anyseg_ros.core.sync import FrameSet, ModalitySynchronizer

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S  # node clock at the start: a realistic epoch
POLL = 10 * MS  # the node's poll period


def make(modalities=("rgb", "depth", "lidar"), slop_ms=15, wait_ms=50, timeout_ms=500, **kw):
    return ModalitySynchronizer(modalities, slop_ms * MS, timeout_ms * MS, wait_ms * MS, **kw)


def streams(rates, seconds, latency_ms=(2.0, 6.0), seed=0, offset_s=None):
    """Arrivals ``(arrival_ns, modality, stamp_ns)`` of sensors at ``rates`` Hz, stamped on the
    node clock (or ``offset_s[m]`` away from it), each arriving after a small latency."""
    rng = random.Random(seed)
    out = []
    for m, hz in rates.items():
        shift = int((offset_s or {}).get(m, 0.0) * S)
        for k in range(int(seconds * hz)):
            t = T0 + k * S // hz
            out.append((t + int(rng.uniform(*latency_ms) * MS), m, t + shift))
    return sorted(out)


def run(sync, arrivals, until_ns=None):
    """Push arrivals in order with a poll every 10 ms between them (as the node does); returns
    ``(sets, delay_ns)`` with each set's delay from its anchor message's arrival to emission."""
    arrived = {}
    sets, delays = [], []

    def take(out, now):
        for fs in out:
            sets.append(fs)
            delays.append(now - arrived[(fs.anchor, fs.stamp_ns)])

    next_poll = arrivals[0][0]
    for now, m, stamp in arrivals:
        while next_poll < now:
            take(sync.poll(next_poll), next_poll)
            next_poll += POLL
        arrived.setdefault((m, stamp), now)
        take(sync.push(m, stamp, (m, stamp), now), now)
    end = until_ns if until_ns is not None else arrivals[-1][0] + sync.wait_ns + POLL
    while next_poll <= end:
        take(sync.poll(next_poll), next_poll)
        next_poll += POLL
    return sets, delays


RATES = {"rgb": 20, "depth": 20, "lidar": 10}


@pytest.fixture(scope="module")
def normal():
    sets, delays = run(make(), streams(RATES, 10.0))
    assert len(sets) >= 195
    return sets, delays


def test_a_message_stamped_far_ahead_costs_only_itself(normal):
    """One extra RGB message a second stamped 0.9 s ahead (issue 14): it used to become the
    stream's newest stamp, so the good ones after it were dropped as out of order."""
    arrivals = streams(RATES, 10.0)
    arrivals += [(T0 + k * S + 17 * MS, "rgb", T0 + k * S + 917 * MS) for k in range(1, 10)]
    sync = make()
    sets, delays = run(sync, sorted(arrivals))
    base_sets, base_delays = normal
    assert len(sets) >= 0.95 * len(base_sets)
    assert {fs.stamp_ns for fs in sets} == {fs.stamp_ns for fs in base_sets}
    assert statistics.mean(delays) <= statistics.mean(base_delays) + 1 * MS
    assert sync.drops["ahead"] == 9 and sync.drops["out_of_order"] == 0
    assert not any(e.kind == "health" and e.new == "stale" for e in sync.events())


def test_a_message_stamped_a_little_ahead_costs_only_itself(normal):
    """The same with 100 ms ahead: within 250 ms, but 8 median deviations past a stream whose
    latency varies by a few ms (the live fuzz run found such messages displacing the stream)."""
    arrivals = streams(RATES, 10.0)
    arrivals += [(T0 + k * S + 17 * MS, "rgb", T0 + k * S + 117 * MS) for k in range(1, 10)]
    sync = make()
    sets, _ = run(sync, sorted(arrivals))
    assert len(sets) >= 0.95 * len(normal[0])
    assert sync.drops["ahead"] == 9 and sync.drops["out_of_order"] == 0


@pytest.mark.parametrize("latency_ms", [(2.0, 45.0), (20.0, 48.0)])
def test_a_jittery_stream_loses_nothing_to_the_ahead_rule(latency_ms):
    """Latency that varies by tens of ms (a loaded host, a busy network; below the 50 ms period:
    one DDS writer does not reorder): no message of an honest stream is taken for a mis-stamped
    one."""
    for seed in range(10):
        sync = make(wait_ms=200)
        sets, _ = run(sync, streams(RATES, 10.0, latency_ms=latency_ms, seed=seed))
        assert sync.drops["ahead"] == 0 and sync.drops["out_of_order"] == 0
        assert len(sets) >= 195


def test_extra_messages_do_not_make_every_frame_wait():
    """150 extra LiDAR messages stamped between sweeps (valid, in order) over a minute: the
    period is the median of recent gaps, so frames between sweeps still go at once. (With the
    smallest gap, each extra made the next sixteen sweeps' frames wait the full wait_ms.)"""
    arrivals = streams(RATES, 60.0)
    base_sets, base_delays = run(make(), arrivals)
    extra = []
    for k in range(150):  # one every 0.4 s, 30 ms after a sweep
        t = T0 + k * 400 * MS + 30 * MS
        extra.append((t + 4 * MS, "lidar", t))
    sets, delays = run(make(), sorted(arrivals + extra))
    assert len(sets) >= 0.95 * len(base_sets)
    assert statistics.mean(delays) <= statistics.mean(base_delays) + 1 * MS
    assert statistics.median(delays) <= statistics.median(base_delays) + 1 * MS


def test_duplicates_and_out_of_order_messages_cost_only_themselves(normal):
    arrivals = streams(RATES, 10.0)
    rgb = [a for a in arrivals if a[1] == "rgb"]
    bad = []
    for k in range(5, len(rgb) - 1, 10):
        now, m, stamp = rgb[k]
        bad.append((now + 1 * MS, m, stamp))  # a duplicate
        prev = rgb[k - 1]
        bad.append((now + 2 * MS, m, prev[2]))  # an old one, delivered again out of order
    sync = make()
    sets, delays = run(sync, sorted(arrivals + bad))
    base_sets, base_delays = normal
    assert {fs.stamp_ns for fs in sets} == {fs.stamp_ns for fs in base_sets}
    assert statistics.mean(delays) <= statistics.mean(base_delays) + 1 * MS
    assert sync.drops["duplicate"] + sync.drops["out_of_order"] == len(bad)
    assert sync.resets == 0


def test_a_backlog_that_clears_costs_two_messages_not_half_a_window():
    """A loaded host: depth arrives 400 ms late for two seconds, then on time again. Its fresh
    messages look far ahead of the median; the third in a row shows the stream moved."""
    arrivals, last = [], 0
    for now, m, stamp in streams({"rgb": 20, "depth": 20}, 4.0):
        if m == "depth":
            # 400 ms behind until 1.6 s; then, in order (DDS keeps a writer's order), the queue
            # goes out in a burst at 2 s and later messages come on time.
            backlog = stamp < T0 + 1600 * MS
            now = stamp + 400 * MS if backlog else max(now, T0 + 2 * S, last + MS)
            last = now
        arrivals.append((now, m, stamp))
    sync = make(("rgb", "depth"))
    sets, _ = run(sync, sorted(arrivals))
    assert sync.drops["ahead"] <= 2
    after = [fs for fs in sets if fs.stamp_ns > T0 + 2.5 * S]
    assert after and all("depth" in fs.items for fs in after)


# ---------------------------------------------------------------- clocks that disagree


@pytest.mark.parametrize(
    "offset_s, expected_s",
    [(-5.0, -5.0), (5.0, 5.0), ("own", None)],
    ids=["minus5s", "plus5s", "own_clock"],
)
def test_a_lidar_on_another_clock_is_reported_and_not_waited_for(normal, offset_s, expected_s):
    """-5 s, +5 s, and stamps from its own oscillator (from 0): before, each camera frame waited
    wait_ms for a LiDAR that was alive (late messages) or never turned alive (future ones)."""
    rgb_depth = streams({"rgb": 20, "depth": 20}, 10.0)
    own = offset_s == "own"
    lidar = [
        (now, m, stamp - T0 if own else stamp)
        for now, m, stamp in streams(
            {"lidar": 10}, 10.0, seed=1, offset_s=None if own else {"lidar": offset_s}
        )
    ]
    sync = make()
    sets, delays = run(sync, sorted(rgb_depth + lidar))
    alone, alone_delays = run(make(("rgb", "depth")), rgb_depth)
    assert len(sets) >= 0.95 * len(alone)
    assert all(fs.anchor == "rgb" and "lidar" not in fs.items for fs in sets)
    # Not waited for (after the first few messages, before the median is known).
    assert statistics.mean(delays[5:]) <= statistics.mean(alone_delays[5:]) + 1 * MS
    assert sync.health(sets[-1].stamp_ns + 10 * MS)["lidar"] == "alive"
    assert not sync.clock_ok("lidar") and sync.clock_ok("rgb")
    off = sync.clock_offset_ns("lidar")
    if own:
        assert off < -T0 + 11 * S
    else:
        assert abs(off - expected_s * S) < 10 * MS
    events = [str(e) for e in sync.events() if e.kind == "clock"]
    assert len(events) == 1 and "sensor lidar: clock offset" in events[0], events
    assert "not waited for" in events[0]


def test_a_camera_on_another_clock_does_not_anchor():
    arrivals = streams({"rgb": 20, "depth": 20}, 5.0, offset_s={"rgb": -5.0})
    sync = make(("rgb", "depth"))
    sets, _ = run(sync, arrivals)
    assert sync.anchor(T0 + 5 * S) == "depth"
    assert sum(fs.anchor == "depth" for fs in sets) >= 95  # all but the first few


def test_a_sensor_that_never_joins_becomes_unsynchronised_and_recovers(normal):
    """LiDAR stamped 100 ms behind (within max_clock_offset, never within slop): after 8 frame
    sets that waited for it in vain while it kept sending, it is no longer waited for, bar one
    probe every 2 s; once its stamps are right again it joins and is synchronised."""
    bad = streams(RATES, 6.0, offset_s={"lidar": -0.1})
    good = [a for a in streams(RATES, 10.0) if a[0] >= T0 + 6 * S]
    sync = make()
    sets, delays = run(sync, sorted(bad + good))
    events = [e for e in sync.events() if e.kind == "sync"]
    assert [e.degraded for e in events] == [True, False], [str(e) for e in events]
    assert "unsynchronised" in str(events[0]) and "synchronised again" in str(events[1])
    since = events[0].now_ns
    assert T0 < since < T0 + 2 * S  # a LiDAR message arrives during every other wait
    stamps = [fs.stamp_ns for fs in sets]
    spell = [t for t in stamps if since + 100 * MS < t < T0 + 6 * S]
    assert len(spell) >= 80
    # During the spell only probes wait: about one per 2 s.
    probes = [t for t, d in zip(stamps, delays, strict=True) if d >= 45 * MS and t in spell]
    assert 1 <= len(probes) <= 3, len(probes)
    after = [fs for fs in sets if fs.stamp_ns > T0 + 6.5 * S and fs.stamp_ns % (100 * MS) == 0]
    assert after and all("lidar" in fs.items for fs in after)
    assert not sync.unsynchronised("lidar")


def test_a_sensor_falling_silent_goes_stale_not_unsynchronised():
    """A LiDAR that stops (unplugged, dropped by a replay schedule) is waited for until its
    timeout, in vain; that is going stale, not being unsynchronised."""
    arrivals = [
        a for a in streams(RATES, 4.0) if a[1] != "lidar" or not T0 + S <= a[2] < T0 + 3 * S
    ]
    sync = make(timeout_ms=800)  # long enough for 16 camera frames to wait in vain
    run(sync, arrivals)
    events = [str(e) for e in sync.events() if e.kind in ("sync", "health")]
    assert "sensor lidar: alive -> stale" in events
    assert not any("unsynchronised" in e for e in events), events


# ---------------------------------------------------------------- max_age: slower sensors


def _lidar_frames(sets: list[FrameSet]) -> float:
    return sum("lidar" in fs.items for fs in sets) / len(sets)


def test_max_age_lets_a_slower_lidar_serve_every_camera_frame(normal):
    base_sets, base_delays = normal
    assert 0.45 <= _lidar_frames(base_sets) <= 0.55  # each sweep used once: every other frame
    sync = make(max_age_ns={"rgb": 0, "depth": 0, "lidar": 100 * MS})
    sets, delays = run(sync, streams(RATES, 10.0))
    assert {fs.stamp_ns for fs in sets} == {fs.stamp_ns for fs in base_sets}
    assert _lidar_frames(sets[1:]) == 1.0
    assert statistics.mean(delays) <= statistics.mean(base_delays) + 1 * MS
    reused = [fs for fs in sets if "lidar" in fs.reused]
    assert len(reused) >= 0.45 * len(sets)
    assert {fs.ages_ns["lidar"] for fs in reused} == {50 * MS}  # the previous sweep
    assert {fs.ages_ns["lidar"] for fs in sets if "lidar" not in fs.reused} == {0}


def test_max_age_is_a_bound_and_never_uses_a_stale_sensor():
    sync = make(("rgb", "lidar"), timeout_ms=200, max_age_ns={"rgb": 0, "lidar": 40 * MS})
    sets, _ = run(sync, streams({"rgb": 20, "lidar": 10}, 3.0))
    assert 0.45 <= _lidar_frames(sets) <= 0.55  # the previous sweep is 50 ms old: too old
    sync = make(("rgb", "lidar"), timeout_ms=200, max_age_ns={"rgb": 0, "lidar": 10 * S})
    lidar_stops = [
        a for a in streams({"rgb": 20, "lidar": 10}, 3.0) if a[1] == "rgb" or a[0] < T0 + S
    ]
    sets, _ = run(sync, lidar_stops)
    late = [fs for fs in sets if fs.stamp_ns > T0 + 1300 * MS]
    assert late and all("lidar" not in fs.items for fs in late)


def test_configure_takes_effect_from_the_next_set_and_keeps_state():
    sync = make(("rgb", "lidar"), wait_ms=1000)
    run(sync, streams({"rgb": 20, "lidar": 10}, 1.0), until_ns=T0 + 960 * MS)
    t = T0 + 1 * S
    assert sync.push("rgb", t, "r", t + MS) == []  # waits for the alive lidar
    sync.configure(slop_ns=15 * MS, timeout_ns={"rgb": 800 * MS, "lidar": 900 * MS}, wait_ns=0)
    (fs,) = sync.poll(t + 2 * MS)  # the same frame, now without waiting
    assert fs.payload("rgb") == "r"
    assert sync.monitor.timeouts_ns == {"rgb": 800 * MS, "lidar": 900 * MS}
    # Arrivals are kept: the LiDAR's last sweep is ~600 ms old, alive under the new 900 ms.
    assert sync.health(t + 500 * MS) == {"rgb": "alive", "lidar": "alive"}
    with pytest.raises(ValueError, match="slop_ns"):
        sync.configure(slop_ns=0, timeout_ns=500 * MS, wait_ns=0)


# ---------------------------------------------------------------- the pieces


def test_clock_offsets_median_window_and_outliers():
    c = ClockOffsets(["a"], max_offset_ns=500, ahead_ns=100, window=5, min_samples=3, confirm=3)
    assert c.offset_ns("a") is None and c.clock_ok("a") and not c.is_ahead("a", 10**6, 0)
    for k in range(3):
        assert not c.observe("a", k * 1000 - 20, k * 1000)  # 20 ns of latency
    assert c.offset_ns("a") == -20 and c.clock_ok("a")
    assert c.is_ahead("a", 5000 + 81, 5000) and not c.is_ahead("a", 5000 + 80, 5000)
    assert c.observe("a", 10**6, 4000)  # a lone outlier: dropped, and kept out of the median
    assert not c.observe("a", 5000 - 20, 5000) and c.offset_ns("a") == -20
    # The stream itself moved (a clock step, a backlog that cleared): the third message in a
    # row that far ahead is taken, and the window starts over from it.
    assert c.observe("a", 10_000 + 6000, 6000) and c.observe("a", 10_000 + 7000, 7000)
    assert not c.observe("a", 10_000 + 8000, 8000)
    assert c.offset_ns("a") is None  # one sample of the new offset so far
    for k in range(2):
        assert not c.observe("a", 10_000 + 9000 + k, 9000 + k)
    assert c.offset_ns("a") == 10_000 and not c.clock_ok("a")
    assert ClockOffsets(["a"], max_offset_ns=0).clock_ok("a")  # 0: never judged
    # With a full window, a message more than `spread` median deviations (and min_ahead_ns)
    # past the median is an outlier too, well under ahead_ns.
    c = ClockOffsets(["a"], ahead_ns=10**6, window=5, min_ahead_ns=10, spread=8)
    for k, jitter in enumerate((0, 4, -4, 8, -8)):  # deviations 0, 4, 4, 8, 8: median 4
        c.observe("a", k * 1000 - 20 + jitter, k * 1000)
    assert c.is_ahead("a", 9000 - 20 + 33, 9000) and not c.is_ahead("a", 9000 - 20 + 32, 9000)
    c = ClockOffsets(["a"], ahead_ns=10**6, window=5, min_ahead_ns=50, spread=1)
    for k in range(5):
        c.observe("a", k * 1000 - 20, k * 1000)  # no spread at all: min_ahead_ns decides
    assert c.is_ahead("a", 9000 - 20 + 51, 9000) and not c.is_ahead("a", 9000 - 20 + 50, 9000)
    with pytest.raises(ValueError, match="ahead_ns"):
        ClockOffsets(["a"], ahead_ns=0)
    assert median([3, 1, 2]) == 2 and median([4, 1, 3, 2]) == 2


def test_join_tracker_misses_probes_and_recovery():
    j = JoinTracker(["l"], after=3, probe_ns=100)
    assert not j.missed("l", 0) and not j.missed("l", 1)
    assert j.missed("l", 2) and j.unsynchronised("l")
    assert not j.waitable("l", 50) and j.waitable("l", 102)
    assert not j.missed("l", 102)  # a failed probe: the next one a period later
    assert not j.waitable("l", 150) and j.waitable("l", 202)
    assert j.joined("l") and not j.unsynchronised("l") and j.waitable("l", 203)
    assert not j.joined("l")
