"""HealthMonitor: OFFLINE -> ALIVE -> STALE -> ALIVE with an injected clock."""

import pytest

from anyseg_ros.core.health import HealthMonitor, SensorState, uniform_timeouts

MS = 1_000_000


def test_state_machine_and_transitions_reported_once():
    h = HealthMonitor({"rgb": 100 * MS, "lidar": 300 * MS})
    assert h.states(0) == {"rgb": SensorState.OFFLINE, "lidar": SensorState.OFFLINE}
    assert h.update(0) == []
    h.seen("rgb", 10 * MS)
    assert h.state("rgb", 110 * MS) is SensorState.ALIVE  # exactly at timeout: alive
    assert h.state("rgb", 111 * MS) == "stale"
    assert [str(t) for t in h.update(50 * MS)] == ["rgb: offline -> alive"]
    assert [str(t) for t in h.update(200 * MS)] == ["rgb: alive -> stale"]
    assert h.update(300 * MS) == []
    h.seen("rgb", 400 * MS)
    (tr,) = h.update(400 * MS)
    assert (tr.modality, tr.old, tr.new, tr.now_ns) == ("rgb", "stale", "alive", 400 * MS)
    assert h.alive(400 * MS) == ("rgb",)


def test_age_and_rate():
    h = HealthMonitor({"lidar": 500 * MS}, rate_window=11)
    assert h.age_ns("lidar", 0) is None and h.rate_hz("lidar", 0) == 0.0
    for k in range(30):
        h.seen("lidar", k * 100 * MS)  # 10 Hz
    assert h.rate_hz("lidar", 2900 * MS) == pytest.approx(10.0)
    assert h.age_ns("lidar", 3000 * MS) == 100 * MS
    assert h.rate_hz("lidar", 4000 * MS) == 0.0  # stale: no rate


def test_reset_forgets_and_reports_offline():
    h = HealthMonitor({"rgb": 100 * MS})
    h.seen("rgb", 0)
    h.update(0)
    h.reset()
    assert h.state("rgb", 0) is SensorState.OFFLINE
    assert [str(t) for t in h.update(1)] == ["rgb: alive -> offline"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        HealthMonitor({"rgb": 0})
    with pytest.raises(KeyError, match="thermal"):
        HealthMonitor({"rgb": 1}).seen("thermal", 0)
    assert uniform_timeouts(["a", "b"], 5) == {"a": 5, "b": 5}
    with pytest.raises(ValueError, match="missing"):
        uniform_timeouts(["a", "b"], {"a": 5})
