"""SyntheticWorld: render every sensor of the rig at any time under any condition.

    world = SyntheticWorld(WorldConfig(width=320, height=240, seed=3))
    f = world.frame(0, condition="night")          # Frame of raw arrays, t = 0
    f = world.render(12.34, "fog", "lidarjitter")  # any time, any condition/failure

Randomness (sensor noise, rain drops) comes from generators seeded by (seed, sensor, time), one
per sensor: the same call always gives the same bytes, and changing a condition that does not
affect a sensor leaves that sensor's data untouched.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from anyseg_model.representations import LidarScan

from .config import WorldConfig, check_condition, check_failure
from .prims import SKY, Prims
from .raycast import GROUND, NOTHING, Hits, PinholeGrid, SphericalGrid, cast
from .rig import Rig, Trajectory
from .scene import Scene
from .sensors import camera_image, depth_image, event_frame, hha, lidar_returns, luminance
from .shading import (
    GROUND_REFLECTIVITY,
    LIGHTING,
    add_rain,
    radiance,
    sky,
    sky_gradient,
    sun_direction,
    surface_albedo,
)

_GROUND_REFL = np.zeros(256, np.float32)
for _c, _r in GROUND_REFLECTIVITY.items():
    _GROUND_REFL[_c] = _r
_STREAMS = {"rgb": 1, "depth": 2, "event": 3, "lidar": 4, "rain": 5, "event_threshold": 6}


@dataclass(frozen=True)
class CameraInfo:
    """What sensor_msgs/CameraInfo carries (plumb-bob model, no distortion)."""

    width: int
    height: int
    K: np.ndarray  # (3, 3)
    D: np.ndarray  # (5,)
    P: np.ndarray  # (3, 4)
    distortion_model: str = "plumb_bob"


@dataclass(frozen=True)
class Frame:
    """All sensors of the rig at one instant (raw arrays, the node's wire formats)."""

    t: float
    condition: str
    failure: str | None
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres, camera z; 0 = no measurement
    event: np.ndarray  # (H, W) uint8 mono8: 128 + net event count over the event window
    labels: np.ndarray  # (H, W) uint8 DELIVER class ids
    lidar: np.ndarray  # (N, 4) float32 x, y, z, intensity in the LiDAR frame
    lidar_labels: np.ndarray  # (N,) uint8 class id of each point (255 = rain clutter)
    camera_info: CameraInfo
    lidar_extrinsic: np.ndarray  # (4, 4) lidar -> camera optical frame
    base_from_camera: np.ndarray = field(repr=False)  # (4, 4), ground plane z = 0 in base

    def lidar_scan(self) -> LidarScan:
        """The scan as anyseg_model.representations expects it."""
        ci = self.camera_info
        return LidarScan(self.lidar, ci.K, self.lidar_extrinsic, (ci.width, ci.height), ci.D)

    def depth_mm(self) -> np.ndarray:
        """Depth as 16UC1 millimetres, 0 = invalid; beyond 65.535 m, which 16 bits cannot hold,
        is invalid too rather than a wrong saturated value."""
        mm = np.round(self.depth.astype(np.float64) * 1000.0)
        return np.where(mm <= 65535, mm, 0).astype(np.uint16)

    def hha(self) -> np.ndarray:
        return hha(self.depth, self.camera_info.K, self.base_from_camera)


class SyntheticWorld:
    """One procedural map seen by one rig. Cheap to create; caches recent renders."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = cfg = config or WorldConfig()
        self.rig = rig = Rig(cfg)
        self.scene = Scene(cfg.seed)
        lay = self.scene.layout
        self.trajectory = Trajectory(lay.ego_speed)
        self.sun_dir = sun_direction(lay.sun_azimuth, lay.sun_elevation)
        self.camera_grid = PinholeGrid(
            _nonzero(rig.camera_dirs), rig.R_base_cam, rig.K, cfg.width, cfg.height
        )
        self.lidar_grid = SphericalGrid(
            _nonzero(rig.lidar_dirs), rig.ring_elevation, cfg.lidar_columns
        )
        self._ray_len = np.linalg.norm(rig.camera_dirs, axis=1)
        self._sky_gradient = sky_gradient(rig.camera_dirs)
        rng = self._rng("event_threshold", 0.0)
        # Fixed-pattern threshold mismatch: every pixel has its own contrast threshold.
        spread = rng.normal(1.0, 0.1, (cfg.height, cfg.width)).clip(0.7, 1.3)
        self.event_threshold = cfg.event_threshold * spread
        self.camera_info = CameraInfo(cfg.width, cfg.height, rig.K, rig.D, rig.P)
        # Recent renders, so the conditions of one instant and the two ends of an event window
        # share their ray casts. Bounded per kind: geometry is the big item (about 5 MB per
        # instant at 320x240), radiance one image per (instant, condition).
        self._caches = {"geometry": _LRU(8), "radiance": _LRU(16), "small": _LRU(64)}

    # ------------------------------------------------------------------ public API

    def frame(self, index: int, condition: str = "sun", failure: str | None = None) -> Frame:
        """Sample ``index`` of this world's drive: :meth:`render` at ``index * frame_dt``."""
        return self.render(index * self.config.frame_dt, condition, failure)

    def render(self, t: float, condition: str = "sun", failure: str | None = None) -> Frame:
        """Every sensor at time ``t`` (seconds since the drive started) under a condition and
        an optional sensor failure; events cover ``[t - event_window, t]``."""
        check_condition(condition)
        check_failure(failure)
        rgb, labels = self.camera(t, condition, failure)
        points, point_labels = self.lidar(t, condition, failure)
        return Frame(
            t=float(t),
            condition=condition,
            failure=failure,
            rgb=rgb,
            depth=self.depth(t, condition),
            event=self.events(t - self.config.event_window, t, condition, failure),
            labels=labels,
            lidar=points,
            lidar_labels=point_labels,
            camera_info=self.camera_info,
            lidar_extrinsic=self.rig.T_cam_lidar.copy(),
            base_from_camera=self.rig.T_base_cam.copy(),
        )

    def camera(
        self, t: float, condition: str = "sun", failure: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(RGB uint8 (H, W, 3), labels uint8 (H, W)) at time ``t``."""
        rad = self._radiance(t, condition)
        rgb = camera_image(rad, LIGHTING[condition], failure, self._rng("rgb", t))
        return rgb, self.labels(t)

    def labels(self, t: float) -> np.ndarray:
        """Ground-truth class ids (H, W) uint8 at time ``t`` (a copy: callers may edit it)."""
        return self._camera_hits(t)[1].copy()

    def depth(self, t: float, condition: str = "sun") -> np.ndarray:
        """Measured depth (H, W) float32 metres (camera z), 0 = no measurement."""
        hits = self._camera_hits(t)[0]
        h, w = self.config.height, self.config.width
        z = hits.t.reshape(h, w)
        dist = (hits.t * self._ray_len).reshape(h, w)
        cfg = self.config
        return depth_image(
            z, dist, cfg.depth_range, cfg.depth_noise, LIGHTING[condition], self._rng("depth", t)
        )

    def events(
        self, t0: float, t1: float, condition: str = "sun", failure: str | None = None
    ) -> np.ndarray:
        """Event frame (H, W) uint8 (128 + net count) accumulated over ``[t0, t1]``."""
        lum0 = luminance(self._radiance(t0, condition))  # (H, W)
        lum1 = luminance(self._radiance(t1, condition))
        light = LIGHTING[condition]
        return event_frame(
            lum0, lum1, self.event_threshold, light, t1 - t0, failure, self._rng("event", t1)
        )

    def lidar_organized(
        self, t: float, condition: str = "sun", failure: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sweep of :meth:`lidar` as an organised cloud, one row per ring from the top beam
        down (as Ouster's driver publishes it): ((rings, columns, 4) float32 with NaN where a
        beam has no return, (rings, columns) uint8 labels, 255 there)."""
        beams: list = []
        points, labels = self.lidar(t, condition, failure, beams)
        rings, cols = self.config.lidar_rings, self.config.lidar_columns
        grid = np.full((rings * cols, 4), np.nan, np.float32)
        lab = np.full(rings * cols, 255, np.uint8)
        grid[beams[0]], lab[beams[0]] = points, labels
        # Beams are ring-major from the lowest ring; rows go from the highest.
        return grid.reshape(rings, cols, 4)[::-1].copy(), lab.reshape(rings, cols)[::-1].copy()

    def lidar(
        self,
        t: float,
        condition: str = "sun",
        failure: str | None = None,
        beams: list | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """((N, 4) float32 points x, y, z, intensity in the LiDAR frame, (N,) uint8 labels);
        ``beams`` receives each point's beam index when given."""
        hits, prims = self._lidar_hits(t)
        cls = self._classes(hits, prims, t)
        # Sentinel rows for NOTHING (-2) and GROUND (-1); the ground's value depends on its class.
        refl = np.concatenate([prims.refl, np.zeros(2, np.float32)])[hits.prim]
        g = hits.prim == GROUND
        refl[g] = _GROUND_REFL[cls[g]]
        cos_inc = (hits.normal * self.rig.lidar_dirs.T).sum(0)
        return lidar_returns(
            hits.t,
            refl,
            cos_inc,
            cls,
            self.rig.lidar_dirs_local,
            self.config.lidar_range,
            LIGHTING[condition],
            failure,
            self._rng("lidar", t),
            beams,
        )

    # ------------------------------------------------------------------ internals

    def _rng(self, stream: str, t: float) -> np.random.Generator:
        key = int(round(t * 1e6)) + (1 << 40)  # microseconds, shifted to stay non-negative
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([self.config.seed, _STREAMS[stream], key]))
        )

    def _cached(self, kind: str, key: tuple, make):
        return self._caches[kind].get(key, make)

    def _prims(self, t: float) -> Prims:
        x = self.trajectory.x(t)
        cfg = self.config
        return self._cached(
            "geometry",
            ("prims", t),
            lambda: self.scene.prims(t, x - cfg.view_behind, x + cfg.view_ahead),
        )

    def _classes(self, hits: Hits, prims: Prims, t: float) -> np.ndarray:
        """Class id per ray: the primitive's, the ground's at the hit point, or Sky."""
        sentinels = np.array([SKY, 0], np.uint8)  # rows -2 (NOTHING) and -1 (GROUND)
        cls = np.concatenate([prims.cls, sentinels])[hits.prim]
        g = np.flatnonzero(hits.prim == GROUND)
        if g.size:
            x = self.trajectory.x(t)
            walks = self._cached(
                "small", ("crosswalks", t), lambda: self.scene.crosswalks(x - 150.0, x + 250.0)
            )
            cls[g] = self.scene.ground_class(hits.point[0, g], hits.point[1, g], walks)
        return cls

    def _camera_hits(self, t: float) -> tuple[Hits, np.ndarray]:
        def make():
            origin = self.rig.camera_origin(self.trajectory.base_origin(t))
            prims = self._prims(t)
            hits = cast(self.camera_grid, origin, prims, max_t=5000.0)
            labels = self._classes(hits, prims, t).reshape(self.config.height, self.config.width)
            return hits, labels

        return self._cached("geometry", ("camera", t), make)

    def _lidar_hits(self, t: float) -> tuple[Hits, Prims]:
        def make():
            origin = self.rig.lidar_origin(self.trajectory.base_origin(t))
            prims = self._prims(t)
            return cast(
                self.lidar_grid, origin, prims, max_t=self.config.lidar_range[1] * 1.5
            ), prims

        return self._cached("geometry", ("lidar", t), make)

    def _radiance(self, t: float, condition: str) -> np.ndarray:
        def make():
            hits, labels = self._camera_hits(t)
            prims = self._prims(t)
            light = LIGHTING[condition]
            albedo, emission = surface_albedo(hits, prims, labels.reshape(-1), light)
            base = self.trajectory.base_origin(t)
            dist = np.where(hits.prim == NOTHING, np.inf, hits.t * self._ray_len)
            sky_rad = self._cached(
                "small", ("sky", condition), lambda: sky(self._sky_gradient, light)
            )
            rad = radiance(
                hits,
                dist,
                albedo,
                emission,
                sky_rad,
                light,
                self.sun_dir,
                headlight=base + np.array([3.8, 0.0, 0.7]),
            )
            rad = rad.reshape(3, self.config.height, self.config.width)
            if light.rain:
                rad = add_rain(rad, self._rng("rain", t), light)
            return rad

        return self._cached("radiance", (t, condition), make)


class _LRU:
    """A small least-recently-used cache: ``get(key, make)`` returns the cached value or stores
    ``make()``."""

    def __init__(self, size: int) -> None:
        self.size, self.items = size, OrderedDict()

    def get(self, key: tuple, make):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = self.items[key] = make()
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return value


def _nonzero(d: np.ndarray) -> np.ndarray:
    """Directions with exact zero components nudged off zero, so slab tests never divide 0/0."""
    return np.where(d == 0.0, 1e-12, d)
