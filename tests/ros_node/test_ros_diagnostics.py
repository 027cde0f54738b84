"""/diagnostics content (anyseg_ros.diagnostics) from a real synchroniser and frame statistics:
levels and messages for failing inference, clocks that disagree, unsynchronised sensors and a ROS
clock that is not running. No rclpy: statuses are plain data."""

from __future__ import annotations

from anyseg_ros.core.sync import ModalitySynchronizer
from anyseg_ros.diagnostics import ERROR, FAILING_AFTER, OK, WARN, ClockState, FrameStats, statuses

MS = 1_000_000
S = 1_000_000_000
T0 = 1_700_000_000 * S
TOPICS = {"rgb": "/rgb/image", "lidar": "/lidar/points"}


def streaming(lidar_offset_s: float = 0.0, seconds: float = 1.0) -> ModalitySynchronizer:
    """rgb 20 Hz and lidar 10 Hz pushed on the node clock (LiDAR stamps shifted)."""
    sync = ModalitySynchronizer(("rgb", "lidar"), 15 * MS, 500 * MS, 50 * MS)
    for k in range(int(seconds * 20)):
        t = T0 + k * 50 * MS
        sync.push("rgb", t, "r", t + 2 * MS)
        if k % 2 == 0:
            sync.push("lidar", t + int(lidar_offset_s * S), "l", t + 3 * MS)
        sync.poll(t + 40 * MS)
    return sync


def by_name(sts):
    return {s.name.split(": ")[-1]: s for s in sts}


def report(sync, stats, now=T0 + 1 * S, clock=None):
    return by_name(statuses("anyseg_node", sync, now, TOPICS, {}, stats, 0, "cpu", clock))


def test_healthy_node_is_ok_and_shows_clock_offsets():
    stats = FrameStats()
    stats.record("rgb", ("rgb", "lidar"), 20.0, 10.0)
    st = report(streaming(), stats)
    assert st["segmentation"].level == OK and st["rgb"].level == OK and st["lidar"].level == OK
    lidar = dict(st["lidar"].values)
    assert -4.0 < float(lidar["clock_offset_ms"]) < -2.0 and lidar["synchronised"] == "true"


def test_failing_inference_is_an_error_with_reason_and_count_until_frames_flow():
    sync, stats = streaming(), FrameStats()
    stats.record("rgb", ("rgb",), 20.0, 10.0)
    stats.failed(MemoryError("cannot allocate 1.9 GB"))
    first = report(sync, stats)["segmentation"]
    assert first.level == WARN and "MemoryError" in first.message  # one failure: a warning
    for _ in range(FAILING_AFTER + 2):
        stats.failed(MemoryError("cannot allocate 1.9 GB"))
    st = report(sync, stats)["segmentation"]
    assert st.level == ERROR
    assert "inference failing: 6 frames in a row (6 in all)" in st.message
    assert "MemoryError: cannot allocate 1.9 GB" in st.message
    values = dict(st.values)
    assert values["inference_errors"] == "6" and values["inference_failing"] == "6"
    stats.record("rgb", ("rgb", "lidar"), 20.0, 10.0)  # frames flow again
    st = report(sync, stats)["segmentation"]
    assert st.level == OK and dict(st.values)["inference_errors"] == "6"


def test_a_sensor_off_the_clock_is_an_error_with_its_offset():
    st = report(streaming(lidar_offset_s=-5.0), FrameStats())
    assert st["lidar"].level == ERROR
    assert "clock offset -5.003 s exceeds max_clock_offset_ms 500" in st["lidar"].message
    assert st["rgb"].level == OK
    assert abs(float(dict(st["lidar"].values)["clock_offset_ms"]) + 5000) < 5


def test_an_unsynchronised_sensor_is_a_warning():
    sync = streaming(lidar_offset_s=-0.1, seconds=2.0)  # never within slop of the camera
    st = report(sync, FrameStats(), now=T0 + 2 * S)
    assert st["lidar"].level == WARN and "unsynchronised" in st["lidar"].message
    assert dict(st["lidar"].values)["synchronised"] == "false"


def test_a_clock_that_is_not_running_says_so():
    sync = ModalitySynchronizer(("rgb", "lidar"), 15 * MS, 500 * MS, 50 * MS)
    st = report(sync, FrameStats(), now=0, clock=ClockState(running=False, held_back=12))
    seg = st["segmentation"]
    assert seg.level == WARN and "ROS clock not running" in seg.message and "12" in seg.message
    assert dict(seg.values)["clock_running"] == "false"
