"""World options, weather conditions and sensor-failure cases of the synthetic world.

Condition and failure names follow DELIVER. Each entry of :data:`AFFECTS` lists the modalities a
condition or failure is allowed to change; the tests hold the renderer to exactly that list, so a
model can learn which sensor to trust when.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

CONDITIONS: tuple[str, ...] = ("sun", "cloud", "night", "fog", "rain")
FAILURES: tuple[str, ...] = (
    "motionblur",
    "overexposure",
    "underexposure",
    "lidarjitter",
    "eventlowres",
)

# What each case changes relative to the same frame under "sun" with no failure. Labels never
# change: the scene is the same, only how the sensors see it.
AFFECTS: dict[str, frozenset[str]] = {
    "sun": frozenset(),
    "cloud": frozenset({"rgb", "event"}),  # softer light: colours and edge contrast change
    "night": frozenset({"rgb", "event"}),  # active depth and LiDAR do not need daylight
    "fog": frozenset({"rgb", "event", "depth", "lidar"}),  # contrast and range both drop
    "rain": frozenset({"rgb", "event", "lidar"}),  # streaks; LiDAR loses and gains returns
    "motionblur": frozenset({"rgb"}),
    "overexposure": frozenset({"rgb"}),
    "underexposure": frozenset({"rgb"}),
    "lidarjitter": frozenset({"lidar"}),
    "eventlowres": frozenset({"event"}),
}


def check_condition(name: str) -> str:
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; valid: {list(CONDITIONS)}")
    return name


def check_failure(name: str | None) -> str | None:
    if name is not None and name not in FAILURES:
        raise ValueError(f"unknown failure {name!r}; valid: {list(FAILURES)} or None")
    return name


def parse_list(text: str | Iterable[str] | None, valid: tuple[str, ...], what: str) -> list[str]:
    """``"sun,night"`` -> ``["sun", "night"]`` in the given order; ``"all"`` -> every name,
    ``""``/``"none"``/``None`` -> ``[]``. Unknown names raise with the valid ones listed."""
    if text is None:
        return []
    items = [s.strip() for s in text.split(",")] if isinstance(text, str) else list(text)
    items = [s for s in items if s]
    if items in (["none"], []):
        return []
    if items == ["all"]:
        return list(valid)
    bad = [s for s in items if s not in valid]
    if bad:
        raise ValueError(f"unknown {what} {bad}; valid: {list(valid)}, 'all' or 'none'")
    return list(dict.fromkeys(items))


@dataclass(frozen=True)
class WorldConfig:
    """Everything that fixes a synthetic world: same config -> byte-identical sensor data.

    ``seed`` picks the map (layout, objects, colours, sun, ego speed); sizes and sensor settings
    are the rig's. ``frame_dt`` spaces :meth:`SyntheticWorld.frame` samples in time and
    ``event_window`` is how much time one event frame accumulates.
    """

    width: int = 320
    height: int = 240
    seed: int = 0
    hfov_deg: float = 90.0
    camera_pitch_deg: float = 3.0  # pitched down a little so more road is in view
    frame_dt: float = 0.5
    event_window: float = 1.0 / 30.0
    event_threshold: float = 0.2  # log-intensity contrast per event (mean; per-pixel spread 10%)
    depth_range: tuple[float, float] = (0.3, 80.0)
    depth_noise: float = 1e-3  # stereo-like noise: sigma = depth_noise * z^2 metres
    lidar_rings: int = 32
    lidar_columns: int = 1024
    lidar_fov_deg: tuple[float, float] = (-25.0, 15.0)  # lowest and highest ring elevation
    lidar_range: tuple[float, float] = (0.8, 100.0)
    view_behind: float = 110.0  # objects are instanced from this far behind the ego ...
    view_ahead: float = 220.0  # ... to this far ahead; beyond that only ground and sky

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8:
            raise ValueError(f"image size must be at least 8x8, got {self.width}x{self.height}")
        if not 10.0 <= self.hfov_deg <= 150.0:
            raise ValueError(f"hfov_deg must be in [10, 150], got {self.hfov_deg}")
        if self.lidar_rings < 1 or self.lidar_columns < 8:
            raise ValueError("lidar needs at least 1 ring and 8 columns")
        if self.seed < 0:
            raise ValueError(f"seed must be non-negative, got {self.seed}")
        if self.frame_dt <= 0 or self.event_window <= 0:
            raise ValueError("frame_dt and event_window must be positive")
