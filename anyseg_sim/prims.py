"""The primitive table the scene is made of and the ray caster intersects.

Every primitive is an axis-aligned box, a vertical cylinder or an axis-aligned ellipsoid, all
described by a centre and half-extents, with a DELIVER class id, a colour, a LiDAR reflectivity,
a texture and the motion of the object it belongs to.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np

from anyseg_model.classes import class_id

BUILDING, FENCE, PEDESTRIAN, POLE = (
    class_id(n) for n in ("Building", "Fence", "Pedestrian", "Pole")
)
ROADLINE, ROAD, SIDEWALK, VEGETATION = (
    class_id(n) for n in ("RoadLine", "Road", "SideWalk", "Vegetation")
)
CARS, WALL, TRAFFICSIGN, SKY, TERRAIN = (
    class_id(n) for n in ("Cars", "Wall", "TrafficSign", "Sky", "Terrain")
)
# The classes this world can produce (a subset of DELIVER's 25, same ids).
SCENE_CLASSES: tuple[int, ...] = tuple(
    sorted(
        {
            BUILDING,
            FENCE,
            PEDESTRIAN,
            POLE,
            ROADLINE,
            ROAD,
            SIDEWALK,
            VEGETATION,
            CARS,
            WALL,
            TRAFFICSIGN,
            SKY,
            TERRAIN,
        }
    )
)

KIND_BOX, KIND_CYLINDER, KIND_ELLIPSOID = 0, 1, 2
# Surface textures (RGB-only detail: none of them changes geometry or LiDAR reflectivity).
TEX_PLAIN, TEX_BUILDING, TEX_FENCE, TEX_FOLIAGE = 0, 1, 2, 3
TEX_GLASS, TEX_TILES, TEX_BRICK, TEX_LAMP = 4, 5, 6, 7

LEG_SWING_OMEGA = 2.0 * math.pi * 0.9  # rad/s of a pedestrian's stride


# Column layout of the packed primitive table (one float64 row per primitive: one array per
# object, so gathering a few hundred objects is one concatenate, not one per field).
_KIND, _CENTRE, _HALF, _CLS, _ALBEDO, _REFL, _TEX, _OID, _VEL, _SWING = (
    0,
    1,
    4,
    7,
    8,
    11,
    12,
    13,
    14,
    15,
)
_COLUMNS = 17


class Prims:
    """A table of primitives. Every kind is described by a centre and half-extents (box half
    sizes; cylinder (r, r, half height); ellipsoid radii), so the axis-aligned bounding box is
    always ``centre +- half``. Rows are positions at t = 0 unless moved by :meth:`at` with the
    per-primitive x velocity and stride swing (amplitude, phase).

    Fields (read-only views or typed copies): kind (N,) int8, centre/half (N, 3) float64, cls
    (N,) uint8 DELIVER id, albedo (N, 3) float32 linear RGB, refl (N,) float32 LiDAR
    reflectivity, tex (N,) uint8 texture, oid (N,) int64 object id (seeds texture detail).
    """

    def __init__(self, table: np.ndarray) -> None:
        self.table = table.reshape(-1, _COLUMNS)

    def __len__(self) -> int:
        return len(self.table)

    @cached_property
    def kind(self) -> np.ndarray:
        return self.table[:, _KIND].astype(np.int8)

    @property
    def centre(self) -> np.ndarray:
        return self.table[:, _CENTRE : _CENTRE + 3]

    @property
    def half(self) -> np.ndarray:
        return self.table[:, _HALF : _HALF + 3]

    @cached_property
    def cls(self) -> np.ndarray:
        return self.table[:, _CLS].astype(np.uint8)

    @cached_property
    def albedo(self) -> np.ndarray:
        return self.table[:, _ALBEDO : _ALBEDO + 3].astype(np.float32)

    @cached_property
    def refl(self) -> np.ndarray:
        return self.table[:, _REFL].astype(np.float32)

    @cached_property
    def tex(self) -> np.ndarray:
        return self.table[:, _TEX].astype(np.uint8)

    @cached_property
    def oid(self) -> np.ndarray:
        return self.table[:, _OID].astype(np.int64)

    @staticmethod
    def concat(tables: list[np.ndarray]) -> Prims:
        return Prims(np.concatenate(tables) if tables else np.zeros((0, _COLUMNS)))

    def select(self, mask: np.ndarray) -> Prims:
        return Prims(self.table[mask])

    def at(self, t: float) -> Prims:
        """The same primitives moved to time ``t``."""
        tab = self.table.copy()
        swing = tab[:, _SWING] * np.sin(LEG_SWING_OMEGA * t + tab[:, _SWING + 1])
        tab[:, _CENTRE] += tab[:, _VEL] * t + swing
        return Prims(tab)


class Parts:
    """Collects the primitives of one object as rows of the packed table."""

    def __init__(self, oid: int, vel: float = 0.0) -> None:
        self.rows: list[list[float]] = []
        self.oid, self.vel = oid, vel

    def _add(self, kind, centre, half, cls, albedo, refl, tex, swing=(0.0, 0.0)) -> None:
        self.rows.append(
            [kind, *centre, *half, cls, *albedo, refl, tex, self.oid, self.vel, *swing]
        )

    def table(self) -> np.ndarray:
        return np.array(self.rows, dtype=np.float64).reshape(-1, _COLUMNS)

    def box(self, lo, hi, cls, albedo, refl, tex=TEX_PLAIN) -> None:
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        self._add(KIND_BOX, (lo + hi) / 2, (hi - lo) / 2, cls, albedo, refl, tex)

    def cylinder(self, x, y, z0, z1, r, cls, albedo, refl, tex=TEX_PLAIN, swing=(0.0, 0.0)) -> None:
        self._add(
            KIND_CYLINDER,
            (x, y, (z0 + z1) / 2),
            (r, r, (z1 - z0) / 2),
            cls,
            albedo,
            refl,
            tex,
            swing,
        )

    def ellipsoid(self, centre, radii, cls, albedo, refl, tex=TEX_PLAIN) -> None:
        self._add(KIND_ELLIPSOID, centre, radii, cls, albedo, refl, tex)
