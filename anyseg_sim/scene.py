"""Procedural street scenes: an endless straight road lined with sidewalks, verges, buildings,
fences, walls, poles, signs, trees, parked and oncoming cars and walking pedestrians.

The world is generated lazily and deterministically: every kind of object is a *stream* of slots
``j = ..., -1, 0, 1, ...`` spaced along the road, and slot ``j`` of stream ``k`` is built from its
own random generator seeded by ``(seed, k, j)``. Any stretch of road at any time can therefore be
rendered directly, in any order, with the same result. Moving objects (oncoming cars,
pedestrians) share one speed per stream so they never run into each other.

Everything is made of axis-aligned boxes, vertical cylinders and axis-aligned ellipsoids
(:class:`~.prims.Prims`), which the ray caster intersects analytically. The ground plane z = 0
is not a primitive: :meth:`Scene.ground_class` says what it is at (x, y): road, lane paint or
terrain.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .prims import (
    BUILDING,
    CARS,
    FENCE,
    PEDESTRIAN,
    POLE,
    ROAD,
    ROADLINE,
    SIDEWALK,
    TERRAIN,
    TEX_BRICK,
    TEX_BUILDING,
    TEX_FENCE,
    TEX_FOLIAGE,
    TEX_GLASS,
    TEX_LAMP,
    TEX_TILES,
    TRAFFICSIGN,
    VEGETATION,
    WALL,
    Parts,
    Prims,
)
from .rig import EGO_LANE_Y

LANE_WIDTH = 3.5
PARKING_WIDTH = 2.2
ROAD_HALF = LANE_WIDTH + PARKING_WIDTH  # two lanes and two parking strips
CURB = 0.15  # sidewalks are raised this much above the road


@dataclass(frozen=True)
class Layout:
    """Per-map choices drawn once from the seed: cross-section widths, densities, traffic speed,
    sun position and the ego's cruising speed."""

    sidewalk: float
    verge: float
    building_p: float
    tree_p: float
    parked_p: float
    pedestrian_p: float
    oncoming_p: float
    oncoming_speed: float
    walk_speed: float
    dash: tuple[float, float]  # centre line paint / gap length
    sun_azimuth: float
    sun_elevation: float
    ego_speed: float

    @staticmethod
    def draw(rng: np.random.Generator) -> Layout:
        return Layout(
            sidewalk=float(rng.uniform(2.5, 4.0)),
            verge=float(rng.uniform(2.0, 5.0)),
            building_p=float(rng.uniform(0.65, 0.95)),
            tree_p=float(rng.uniform(0.3, 0.8)),
            parked_p=float(rng.uniform(0.25, 0.6)),
            pedestrian_p=float(rng.uniform(0.35, 0.8)),
            oncoming_p=float(rng.uniform(0.4, 0.8)),
            oncoming_speed=float(rng.uniform(7.0, 12.0)),
            walk_speed=float(rng.uniform(1.1, 1.6)),
            dash=(3.0, float(rng.choice([3.0, 6.0]))),
            sun_azimuth=float(rng.uniform(-math.pi, math.pi)),
            sun_elevation=float(rng.uniform(math.radians(25), math.radians(65))),
            ego_speed=float(rng.uniform(7.0, 11.0)),
        )


@dataclass(frozen=True)
class Stream:
    """Objects spaced ``spacing`` apart along x, all moving at ``vel``; ``reach`` bounds how far
    an object extends from its slot position (for the window test)."""

    name: str
    spacing: float
    build: Callable[[np.random.Generator, float, Parts], None]
    vel: float = 0.0
    reach: float = 20.0


FACADES = [
    (0.45, 0.42, 0.38),
    (0.55, 0.35, 0.28),
    (0.62, 0.60, 0.55),
    (0.35, 0.36, 0.40),
    (0.70, 0.62, 0.45),
    (0.40, 0.28, 0.22),
    (0.58, 0.56, 0.60),
]
CAR_PAINT = [
    (0.6, 0.05, 0.05),
    (0.05, 0.1, 0.45),
    (0.8, 0.8, 0.8),
    (0.03, 0.03, 0.03),
    (0.45, 0.45, 0.47),
    (0.1, 0.35, 0.12),
    (0.75, 0.55, 0.1),
    (0.9, 0.9, 0.85),
]
SIGN_COLOURS = [(0.7, 0.05, 0.05), (0.05, 0.15, 0.6), (0.85, 0.7, 0.05), (0.85, 0.85, 0.85)]
SKIN = [(0.85, 0.65, 0.5), (0.6, 0.42, 0.3), (0.35, 0.22, 0.15), (0.95, 0.78, 0.65)]


def _pick(rng: np.random.Generator, palette, jitter: float = 0.04) -> tuple[float, float, float]:
    c = np.asarray(palette[int(rng.integers(len(palette)))]) + rng.uniform(-jitter, jitter, 3)
    return tuple(np.clip(c, 0.01, 0.95))


class Scene:
    """One map: a :class:`Layout` and its object streams. ``seed`` fixes everything."""

    def __init__(self, seed: int, cache_size: int = 4096) -> None:
        self.seed = int(seed)
        self.layout = Layout.draw(self._rng(0, 0))
        lay = self.layout
        self.sidewalk_outer = ROAD_HALF + lay.sidewalk
        self.building_line = self.sidewalk_outer + lay.verge
        self.streams: list[Stream] = [
            Stream("oncoming", 38.0, self._oncoming_car, -lay.oncoming_speed, 11.0)
        ]
        for side in (1, -1):  # 1 = left of the road (y > 0), -1 = right
            self.streams += [
                Stream("sidewalk", 10.0, self._side(self._sidewalk, side), 0.0, 10.5),
                Stream("building", 18.0, self._side(self._building, side), 0.0, 19.0),
                Stream("barrier", 12.0, self._side(self._barrier, side), 0.0, 13.0),
                Stream("pole", 24.0, self._side(self._pole, side), 0.0, 5.0),
                Stream("tree", 9.0, self._side(self._tree, side), 0.0, 5.0),
                Stream("bush", 5.0, self._side(self._bush, side), 0.0, 2.5),
                Stream("parked", 6.5, self._side(self._parked_car, side), 0.0, 4.0),
                Stream(
                    "walker_out", 10.0, self._side(self._pedestrian, side, 0), lay.walk_speed, 2.5
                ),
                Stream(
                    "walker_in", 13.0, self._side(self._pedestrian, side, 1), -lay.walk_speed, 2.5
                ),
            ]
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()  # per object
        self._static: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()  # per window
        self._cache_size = cache_size

    # ------------------------------------------------------------------ queries

    def prims(self, t: float, x_lo: float, x_hi: float) -> Prims:
        """Every primitive overlapping x in [x_lo, x_hi] at time ``t``, positions at ``t``."""
        # Static objects do not depend on t: gather them for a window snapped to a 64 m grid
        # (a superset of [x_lo, x_hi]) and reuse that table while the ego stays inside it.
        k0, k1 = math.floor(x_lo / 64.0), math.ceil(x_hi / 64.0)
        static = self._static.get((k0, k1))
        if static is None:
            static = self._gather(0.0, 64.0 * k0, 64.0 * k1, moving=False)
            self._static[(k0, k1)] = static
            if len(self._static) > 4:
                self._static.popitem(last=False)
        moving = Prims(self._gather(t, x_lo, x_hi, moving=True)).at(t)
        p = Prims(np.concatenate([static, moving.table]))
        keep = (p.centre[:, 0] + p.half[:, 0] >= x_lo) & (p.centre[:, 0] - p.half[:, 0] <= x_hi)
        return p.select(keep)

    def _gather(self, t: float, x_lo: float, x_hi: float, moving: bool) -> np.ndarray:
        """Packed rows (at t = 0) of the static or the moving streams' objects that can overlap
        [x_lo, x_hi] at time ``t``."""
        parts = []
        for k, s in enumerate(self.streams):
            if (s.vel != 0.0) != moving:
                continue
            shift = s.vel * t
            j0 = math.floor((x_lo - s.reach - shift) / s.spacing)
            j1 = math.ceil((x_hi + s.reach - shift) / s.spacing)
            parts += [self._object(k, j) for j in range(j0, j1 + 1)]
        return Prims.concat([q for q in parts if len(q)]).table

    def crosswalks(self, x_lo: float, x_hi: float) -> np.ndarray:
        """x centres of the zebra crossings whose 4 m wide band overlaps [x_lo, x_hi]."""
        j0, j1 = math.floor((x_lo - 15) / 90.0), math.ceil((x_hi + 15) / 90.0)
        xs = [self._crosswalk(j) for j in range(j0, j1 + 1)]
        return np.array([x for x in xs if x is not None and x_lo - 2 <= x <= x_hi + 2])

    def ground_class(self, x: np.ndarray, y: np.ndarray, crosswalks: np.ndarray) -> np.ndarray:
        """Class of the ground plane z = 0 at (x, y): road, lane paint, or terrain outside."""
        ay = np.abs(y)
        cls = np.full(len(x), TERRAIN, np.uint8)
        cls[ay < self.sidewalk_outer] = SIDEWALK  # (under the sidewalk slabs)
        road = np.flatnonzero(ay < ROAD_HALF)
        cls[road] = ROAD
        xr, ayr = x[road], ay[road]
        paint = np.abs(ayr - LANE_WIDTH) < 0.07  # solid lines between lanes and parking strips
        centre = np.flatnonzero(ayr < 0.08)  # dashed centre line
        paint_len, gap = self.layout.dash
        paint[centre] = np.mod(xr[centre], paint_len + gap) < paint_len
        for xc in crosswalks:  # zebra stripes run along the road, 0.5 m paint every 1 m
            near = np.flatnonzero(np.abs(xr - xc) < 2.0)
            yy = y[road[near]]
            paint[near] |= (ayr[near] < ROAD_HALF - 0.3) & (np.mod(yy + 0.25, 1.0) < 0.5)
        cls[road[paint]] = ROADLINE
        return cls

    # ------------------------------------------------------------------ machinery

    def _rng(self, stream: int, j: int) -> np.random.Generator:
        return np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([self.seed, stream, j + 2**32]))
        )

    def _object(self, k: int, j: int) -> np.ndarray:
        """Packed primitive rows of slot ``j`` of stream ``k`` (cached)."""
        key = (k, j)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        s = self.streams[k]
        parts = Parts(oid=(k * 1_000_003 + j) & 0xFFFFFFFF, vel=s.vel)
        s.build(self._rng(k + 1, j), j * s.spacing, parts)
        table = parts.table()
        self._cache[key] = table
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return table

    @staticmethod
    def _side(fn, side: int, *args):
        return lambda rng, x0, parts: fn(rng, x0, parts, side, *args)

    def _crosswalk(self, j: int) -> float | None:
        rng = self._rng(10_000, j)
        x = 90.0 * j + rng.uniform(-15.0, 15.0)
        return float(x) if rng.random() < 0.5 else None

    def _near_crosswalk(self, x: float, margin: float) -> bool:
        j = round(x / 90.0)
        return any(
            c is not None and abs(x - c) < margin for c in map(self._crosswalk, (j - 1, j, j + 1))
        )

    # ------------------------------------------------------------------ object builders
    # Each gets its own generator, the slot position x0 and the side; y grows away from the road
    # on the left side, so ``side * y`` maps a distance from the centre line to a coordinate.

    def _sidewalk(self, rng, x0, parts: Parts, side: int) -> None:
        grey = 0.52 + rng.uniform(-0.03, 0.03)
        lo = np.array([x0, side * ROAD_HALF, 0.0])
        hi = np.array([x0 + 10.0, side * self.sidewalk_outer, CURB])
        parts.box(lo, hi, SIDEWALK, (grey, grey, grey * 0.97), 0.35, TEX_TILES)

    def _building(self, rng, x0, parts: Parts, side: int) -> None:
        if rng.random() > self.layout.building_p:
            return
        gap = 0.0 if rng.random() < 0.6 else rng.uniform(2.0, 7.0)
        length = 18.0 - gap
        y0 = self.building_line + rng.uniform(0.0, 3.0)
        depth = rng.uniform(8.0, 16.0)
        height = 4.0 + rng.gamma(2.0, 4.0)
        colour = _pick(rng, FACADES)
        lo = np.array([x0 + gap / 2, side * y0, 0.0])
        hi = np.array([x0 + gap / 2 + length, side * (y0 + depth), min(height, 40.0)])
        parts.box(lo, hi, BUILDING, colour, 0.3, TEX_BUILDING)
        if rng.random() < 0.3:  # a set-back top storey breaks the skyline
            inset = rng.uniform(1.0, 3.0)
            top = np.array(
                [hi[0] - inset, side * (y0 + depth - inset), hi[2] + rng.uniform(2.5, 6.0)]
            )
            parts.box(
                np.array([lo[0] + inset, side * (y0 + inset), hi[2]]),
                top,
                BUILDING,
                colour,
                0.3,
                TEX_BUILDING,
            )

    def _barrier(self, rng, x0, parts: Parts, side: int) -> None:
        if rng.random() > 0.4:
            return
        start = x0 + rng.uniform(0.0, 3.0)
        end = x0 + 12.0 - rng.uniform(0.0, 3.0)
        y = side * (self.building_line - 0.4)
        if rng.random() < 0.6:  # a thin fence: geometry hardly differs from a wall's
            h, th = rng.uniform(1.0, 1.8), 0.05
            colour = _pick(rng, [(0.35, 0.25, 0.15), (0.5, 0.5, 0.52), (0.15, 0.3, 0.15)])
            parts.box(
                np.array([start, y - th, 0.0]),
                np.array([end, y + th, h]),
                FENCE,
                colour,
                0.4,
                TEX_FENCE,
            )
        else:
            h, th = rng.uniform(0.6, 2.2), 0.15
            colour = _pick(rng, [(0.6, 0.58, 0.55), (0.55, 0.3, 0.22), (0.4, 0.4, 0.38)])
            parts.box(
                np.array([start, y - th, 0.0]),
                np.array([end, y + th, h]),
                WALL,
                colour,
                0.3,
                TEX_BRICK,
            )

    def _pole(self, rng, x0, parts: Parts, side: int) -> None:
        if rng.random() > 0.9:
            return
        x, y = x0 + rng.uniform(-3.0, 3.0), side * (ROAD_HALF + 0.45)
        grey = (0.35, 0.36, 0.38)
        kind = rng.random()
        if kind < 0.5:  # street lamp: pole, arm over the road, lamp head (emissive at night)
            h = rng.uniform(6.5, 8.0)
            parts.cylinder(x, y, CURB, CURB + h, 0.09, POLE, grey, 0.4)
            arm_end = y - side * 1.8
            parts.box(
                np.array([x - 0.05, y, CURB + h - 0.1]),
                np.array([x + 0.05, arm_end, CURB + h]),
                POLE,
                grey,
                0.4,
            )
            parts.box(
                np.array([x - 0.25, arm_end - side * 0.15, CURB + h - 0.25]),
                np.array([x + 0.25, arm_end + side * 0.3, CURB + h - 0.1]),
                POLE,
                (0.8, 0.8, 0.7),
                0.5,
                TEX_LAMP,
            )
        elif kind < 0.85:  # traffic sign: a retro-reflective plate, very bright to the LiDAR
            h = rng.uniform(2.2, 2.8)
            parts.cylinder(x, y, CURB, CURB + h, 0.04, POLE, grey, 0.4)
            s = rng.uniform(0.55, 0.8)
            parts.box(
                np.array([x - 0.02, y - s / 2, CURB + h - 0.1]),
                np.array([x + 0.02, y + s / 2, CURB + h - 0.1 + s]),
                TRAFFICSIGN,
                _pick(rng, SIGN_COLOURS, 0.02),
                0.95,
            )
        else:  # utility pole
            h = rng.uniform(5.0, 9.0)
            parts.cylinder(x, y, CURB, CURB + h, 0.13, POLE, (0.3, 0.22, 0.15), 0.35)

    def _tree(self, rng, x0, parts: Parts, side: int) -> None:
        if rng.random() > self.layout.tree_p:
            return
        x = x0 + rng.uniform(-2.0, 2.0)
        y = side * (self.sidewalk_outer + self.layout.verge * rng.uniform(0.35, 0.65))
        h, r = rng.uniform(1.8, 3.2), rng.uniform(0.12, 0.25)
        parts.cylinder(x, y, 0.0, h + 0.5, r, VEGETATION, (0.25, 0.17, 0.1), 0.3)
        radii = np.array([rng.uniform(1.2, 2.6), rng.uniform(1.2, 2.6), rng.uniform(1.5, 3.0)])
        green = (rng.uniform(0.06, 0.15), rng.uniform(0.2, 0.35), rng.uniform(0.04, 0.1))
        # Foliage reflects near-infrared strongly: high LiDAR reflectivity.
        parts.ellipsoid(
            np.array([x, y, h + 0.7 * radii[2]]), radii, VEGETATION, green, 0.6, TEX_FOLIAGE
        )

    def _bush(self, rng, x0, parts: Parts, side: int) -> None:
        if rng.random() > 0.35:
            return
        radii = np.array([rng.uniform(0.5, 1.2), rng.uniform(0.4, 0.7), rng.uniform(0.4, 0.8)])
        y = side * (
            self.sidewalk_outer
            + radii[1]
            + rng.uniform(0.0, max(0.1, self.layout.verge - 2 * radii[1]))
        )
        green = (rng.uniform(0.05, 0.12), rng.uniform(0.18, 0.3), rng.uniform(0.03, 0.08))
        parts.ellipsoid(
            np.array([x0 + rng.uniform(-1, 1), y, 0.7 * radii[2]]),
            radii,
            VEGETATION,
            green,
            0.6,
            TEX_FOLIAGE,
        )

    def _car(self, rng, x: float, y: float, parts: Parts) -> None:
        length, width = rng.uniform(3.9, 4.8), rng.uniform(1.7, 1.9)
        paint = _pick(rng, CAR_PAINT)
        body_top = 0.28 + rng.uniform(0.6, 0.8)
        parts.box(
            np.array([x - length / 2, y - width / 2, 0.28]),
            np.array([x + length / 2, y + width / 2, body_top]),
            CARS,
            paint,
            0.6,
        )
        c0 = x - length / 2 + length * rng.uniform(0.15, 0.3)
        roof = body_top + rng.uniform(0.4, 0.55)
        parts.box(
            np.array([c0, y - width / 2 + 0.08, body_top]),
            np.array([c0 + length * 0.5, y + width / 2 - 0.08, roof]),
            CARS,
            (0.04, 0.05, 0.07),
            0.1,
            TEX_GLASS,
        )
        for dx in (-1, 1):
            for dy in (-1, 1):
                cx, cy = x + dx * (length / 2 - 0.75), y + dy * (width / 2 - 0.12)
                parts.box(
                    np.array([cx - 0.31, cy - 0.11, 0.0]),
                    np.array([cx + 0.31, cy + 0.11, 0.62]),
                    CARS,
                    (0.03, 0.03, 0.03),
                    0.1,
                )

    def _parked_car(self, rng, x0, parts: Parts, side: int) -> None:
        if rng.random() > self.layout.parked_p or self._near_crosswalk(x0, 6.0):
            return
        self._car(
            rng,
            x0 + rng.uniform(-0.4, 0.4),
            side * (ROAD_HALF - 1.1) + rng.uniform(-0.15, 0.15),
            parts,
        )

    def _oncoming_car(self, rng, x0, parts: Parts) -> None:
        if rng.random() > self.layout.oncoming_p:
            return
        self._car(rng, x0 + rng.uniform(-8.0, 8.0), -EGO_LANE_Y + rng.uniform(-0.25, 0.25), parts)

    def _pedestrian(self, rng, x0, parts: Parts, side: int, band: int) -> None:
        if rng.random() > self.layout.pedestrian_p:
            return
        half = self.layout.sidewalk / 2
        d = ROAD_HALF + (0.6 if band == 0 else half) + rng.uniform(0.0, half - 0.6)
        x, y, z0 = x0 + rng.uniform(-2.0, 2.0), side * d, CURB
        h = rng.uniform(1.55, 1.95)
        trousers, shirt = (
            _pick(rng, [(0.1, 0.1, 0.2), (0.2, 0.2, 0.2), (0.4, 0.3, 0.2)]),
            tuple(rng.uniform(0.05, 0.8, 3)),
        )
        phase = rng.uniform(0, 2 * math.pi)
        for k, dy in enumerate((-0.1, 0.1)):  # legs swing in opposite phase: events at every step
            parts.cylinder(
                x,
                y + dy,
                z0,
                z0 + 0.48 * h,
                0.075,
                PEDESTRIAN,
                trousers,
                0.35,
                swing=(0.12, phase + k * math.pi),
            )
        parts.ellipsoid(
            np.array([x, y, z0 + 0.64 * h]),
            np.array([0.13, 0.21, 0.17 * h]),
            PEDESTRIAN,
            shirt,
            0.35,
        )
        parts.ellipsoid(
            np.array([x, y, z0 + 0.91 * h]),
            np.full(3, 0.062 * h),
            PEDESTRIAN,
            _pick(rng, SKIN),
            0.35,
        )
