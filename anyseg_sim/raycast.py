"""Analytic ray casting of :class:`~.prims.Prims` for ray grids (camera pixels, LiDAR beams).

Testing every ray against every primitive would cost rays x primitives. Instead each primitive's
bounding box is mapped to the rectangle of grid cells (pixel rows/columns, or LiDAR rings/azimuth
columns) whose rays can possibly hit it, and only those (ray, primitive) pairs are intersected,
all at once in numpy; a per-ray minimum over packed (distance, primitive) keys then picks the
nearest hit. That is rasterisation with exact analytic surfaces, and the same code serves the
camera and the LiDAR, so both sensors see identical geometry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .prims import KIND_BOX, KIND_CYLINDER, KIND_ELLIPSOID, Prims

GROUND = -1  # prim index of a ground-plane hit
NOTHING = -2  # no hit (sky, or beyond the range limit)
_EPS = 1e-6

# The 8 box corners as bit patterns and the 12 edges joining corners that differ in one bit.
_CORNER_BITS = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], dtype=bool)
_EDGES = np.array([(i, i | (1 << k)) for i in range(8) for k in range(3) if not i & (1 << k)])


@dataclass
class Hits:
    """Nearest hit per ray of a grid, row-major (rows x columns)."""

    t: np.ndarray  # (R,) float64 ray parameter; inf where nothing was hit
    prim: np.ndarray  # (R,) int64 primitive index, GROUND or NOTHING
    point: np.ndarray  # (3, R) float64 world point (the origin where nothing was hit)
    normal: np.ndarray  # (3, R) float32 unit surface normal (0 where nothing was hit)

    # Vectors are stored channel-first: numpy broadcasts a (3, 1) vector over (3, R) quickly,
    # while (R, 3) arrays make it loop over rows of three.


class PinholeGrid:
    """Rays through pixel centres of a pinhole camera, one per pixel."""

    def __init__(
        self, dirs: np.ndarray, R_world_cam: np.ndarray, K: np.ndarray, width: int, height: int
    ) -> None:
        self.dirs, self.R, self.K = dirs, R_world_cam, K
        self.axis = [np.ascontiguousarray(dirs[:, i]) for i in range(3)]
        self.inv32 = [(1.0 / a).astype(np.float32) for a in self.axis]  # dirs have no zeros
        self.down = np.where(self.axis[2] < 0, -1.0 / self.axis[2], np.inf)  # ground: t = z0 * down
        self.rows, self.cols = height, width

    def in_view(self, lo: np.ndarray, hi: np.ndarray, max_t: float) -> np.ndarray:
        """Cheap cull before :meth:`rects`: boxes with some point in front of the camera."""
        f = self.R[:, 2]  # the optical axis in world axes; max of f.p over a box, per axis
        z_far = np.maximum(lo * f, hi * f).sum(axis=1)
        return (z_far > 0.05) & (_box_distance(lo, hi) <= max_t * np.abs(self.dirs).max())

    def rects(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
        """Pixel rectangles (r0, r1, c0, c1), inclusive, covering boxes [lo, hi] given relative to
        the camera centre. The box is clipped by the near plane first, so boxes that reach
        behind the camera (a sidewalk segment under it) still get an exact rectangle."""
        near = 0.05
        corners = np.where(_CORNER_BITS[None], hi[:, None, :], lo[:, None, :])  # (M, 8, 3)
        cam = corners @ self.R  # (M, 8, 3) in the optical frame (p_cam = R^T p)
        s = cam[..., 2] - near
        p0, p1 = cam[:, _EDGES[:, 0]], cam[:, _EDGES[:, 1]]  # (M, 12, 3)
        s0, s1 = s[:, _EDGES[:, 0]], s[:, _EDGES[:, 1]]
        crossing = s0 * s1 < 0
        f = np.where(crossing, s0 / np.where(crossing, s0 - s1, 1.0), 0.0)
        cut = p0 + f[..., None] * (p1 - p0)  # edge points on the near plane
        pts = np.concatenate([cam, cut], axis=1)  # (M, 20, 3)
        ok = np.concatenate([s >= 0, crossing], axis=1)
        z = np.where(ok, np.maximum(pts[..., 2], near), 1.0)
        u = self.K[0, 0] * pts[..., 0] / z + self.K[0, 2]
        v = self.K[1, 1] * pts[..., 1] / z + self.K[1, 2]
        big = np.inf
        u_lo, u_hi = np.where(ok, u, big).min(1), np.where(ok, u, -big).max(1)
        v_lo, v_hi = np.where(ok, v, big).min(1), np.where(ok, v, -big).max(1)
        # Pixel c's ray passes through c + 0.5; one pixel of margin absorbs rounding.
        with np.errstate(invalid="ignore"):
            c0, c1 = np.ceil(u_lo - 0.5) - 1, np.floor(u_hi - 0.5) + 1
            r0, r1 = np.ceil(v_lo - 0.5) - 1, np.floor(v_hi - 0.5) + 1
            seen = ok.any(1) & (c0 <= self.cols - 1) & (c1 >= 0) & (r0 <= self.rows - 1) & (r1 >= 0)
        c0 = np.where(seen, np.clip(c0, 0, self.cols - 1), 0)
        c1 = np.where(seen, np.clip(c1, 0, self.cols - 1), -1)
        r0 = np.where(seen, np.clip(r0, 0, self.rows - 1), 0)
        r1 = np.where(seen, np.clip(r1, 0, self.rows - 1), -1)
        return (r0.astype(np.int64), r1.astype(np.int64), c0.astype(np.int64), c1.astype(np.int64))


class SphericalGrid:
    """Beams of a spinning LiDAR: one row per ring (ascending elevation), one column per azimuth
    step starting at -pi. The LiDAR's z axis must be the world's (it is mounted level)."""

    def __init__(self, dirs: np.ndarray, elevation: np.ndarray, columns: int) -> None:
        self.dirs, self.elevation = dirs, elevation
        self.axis = [np.ascontiguousarray(dirs[:, i]) for i in range(3)]
        self.inv32 = [(1.0 / a).astype(np.float32) for a in self.axis]  # dirs have no zeros
        self.down = np.where(self.axis[2] < 0, -1.0 / self.axis[2], np.inf)  # ground: t = z0 * down
        self.rows, self.cols = len(elevation), columns

    def in_view(self, lo: np.ndarray, hi: np.ndarray, max_t: float) -> np.ndarray:
        """Cheap cull before :meth:`rects`: boxes within range (beams are unit length)."""
        return _box_distance(lo, hi) <= max_t

    def rects(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, ...]:
        """(ring r0, r1, azimuth c0, c1) rectangles covering boxes relative to the LiDAR; c may
        run past the last column (the caller wraps it), so a box straddling azimuth +-pi works."""
        xs = np.stack([lo[:, 0], hi[:, 0], hi[:, 0], lo[:, 0]], 1)
        ys = np.stack([lo[:, 1], lo[:, 1], hi[:, 1], hi[:, 1]], 1)
        az = np.arctan2(ys, xs)  # (M, 4) azimuth of the footprint corners
        cx, cy = (lo[:, 0] + hi[:, 0]) / 2, (lo[:, 1] + hi[:, 1]) / 2
        mid = np.arctan2(cy, cx)
        # Relative to the footprint centre's azimuth the corners span less than pi (the sensor is
        # outside the footprint), so min/max work even across the +-pi seam.
        rel = np.mod(az - mid[:, None] + math.pi, 2 * math.pi) - math.pi
        a0, a1 = mid + rel.min(1), mid + rel.max(1)
        inside = (lo[:, 0] <= 0) & (hi[:, 0] >= 0) & (lo[:, 1] <= 0) & (hi[:, 1] >= 0)
        step = 2 * math.pi / self.cols
        c0 = np.ceil((a0 + math.pi) / step - 0.5) - 1
        c1 = np.floor((a1 + math.pi) / step - 0.5) + 1
        c0 = np.where(inside, 0, c0)
        c1 = np.where(inside | (c1 - c0 >= self.cols), c0 + self.cols - 1, c1)
        # Elevation bounds: the steepest view of a top/bottom face is from its nearest footprint
        # point, the shallowest from its farthest corner.
        dx = np.maximum(np.maximum(lo[:, 0], -hi[:, 0]), 0)
        dy = np.maximum(np.maximum(lo[:, 1], -hi[:, 1]), 0)
        d_near = np.hypot(dx, dy)
        d_far = np.hypot(
            np.maximum(np.abs(lo[:, 0]), np.abs(hi[:, 0])),
            np.maximum(np.abs(lo[:, 1]), np.abs(hi[:, 1])),
        )
        with np.errstate(divide="ignore"):
            el_hi = np.where(
                hi[:, 2] > 0, np.arctan2(hi[:, 2], d_near), np.arctan2(hi[:, 2], d_far)
            )
            el_lo = np.where(
                lo[:, 2] < 0, np.arctan2(lo[:, 2], d_near), np.arctan2(lo[:, 2], d_far)
            )
        r0 = np.searchsorted(self.elevation, el_lo - 1e-9, "left")
        r1 = np.searchsorted(self.elevation, el_hi + 1e-9, "right") - 1
        return r0.astype(np.int64), r1.astype(np.int64), c0.astype(np.int64), c1.astype(np.int64)


def _box_distance(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance from the origin to each box [lo, hi] (0 inside)."""
    gap = np.maximum(np.maximum(lo, -hi), 0.0)
    return np.sqrt((gap * gap).sum(axis=1))


def cast(
    grid: PinholeGrid | SphericalGrid, origin: np.ndarray, prims: Prims, max_t: float = np.inf
) -> Hits:
    """Nearest hit of every ray of ``grid`` from ``origin`` against ``prims`` and the ground
    plane z = 0. Rays are ``grid.dirs`` (need not be unit length: t is in their units)."""
    n_rays = len(grid.dirs)
    rel = prims.centre - origin  # everything relative to the ray origin
    seen = np.flatnonzero(grid.in_view(rel - prims.half, rel + prims.half, max_t))
    order = seen[np.argsort(prims.kind[seen], kind="stable")]  # kinds grouped: contiguous pairs
    kind = prims.kind[order]
    centre, half = rel[order], prims.half[order]
    r0, r1, c0, c1 = grid.rects(centre - half, centre + half)
    prim_of, ray = _pairs(r0, r1, c0, c1, grid.cols)

    # Intersect every pair; boxes (most pairs) in float32, which is exact enough for slab tests
    # and several times faster; quadrics in float64, whose discriminants cancel badly in float32.
    # Directions never have exact zero components (see _nonzero in world.py), so 1/d is finite.
    t = np.full(len(ray), np.inf)
    counts = np.bincount(kind[prim_of], minlength=3) if len(ray) else np.zeros(3, np.int64)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    for k in (KIND_BOX, KIND_CYLINDER, KIND_ELLIPSOID):
        s = slice(bounds[k], bounds[k + 1])
        if s.stop == s.start:
            continue
        p, r = prim_of[s], ray[s]
        if k == KIND_BOX:  # gather the ray's inverse direction and the box's slab planes
            inv = [np.take(a, r) for a in grid.inv32]
            lo = [np.take((centre[:, i] - half[:, i]).astype(np.float32), p) for i in range(3)]
            hi = [np.take((centre[:, i] + half[:, i]).astype(np.float32), p) for i in range(3)]
            t[s] = _box(inv, lo, hi)
        else:  # component arrays, not (N, 3): numpy loops fastest over long 1-D arrays
            d = [np.take(a, r) for a in grid.axis]
            c = [np.take(np.ascontiguousarray(centre[:, i]), p) for i in range(3)]
            h = [np.take(np.ascontiguousarray(half[:, i]), p) for i in range(3)]
            t[s] = (_cylinder if k == KIND_CYLINDER else _ellipsoid)(d, c, h)

    # Nearest hit per ray: pack (quantised t, primitive) into one int64 and take the minimum.
    hit = t < max_t
    pr, pt, pp = ray[hit], t[hit], prim_of[hit]
    key = (pt * 4096.0).astype(np.int64) << 20 | pp
    best = np.full(n_rays, np.iinfo(np.int64).max)
    np.minimum.at(best, pr, key)
    win = key == best[pr]
    t_ray = np.full(n_rays, np.inf)
    prim = np.full(n_rays, NOTHING, dtype=np.int64)
    t_ray[pr[win]] = pt[win]
    prim[pr[win]] = pp[win]

    # The ground plane z = 0 (the road; sidewalks and everything else stand on it).
    tg = origin[2] * grid.down  # down = -1/dz for rays going down, inf otherwise
    ground = (tg < t_ray) & (tg < max_t)
    t_ray[ground] = tg[ground]
    prim[ground] = GROUND

    tt = np.where(np.isfinite(t_ray), t_ray, 0.0)
    rel = np.stack([tt * grid.axis[i] for i in range(3)])  # (3, R) hit relative to the origin
    point = rel + origin[:, None]
    normal = np.zeros((3, n_rays), np.float32)
    normal[2, ground] = 1.0
    obj = np.flatnonzero(prim >= 0)
    if obj.size:
        p = prim[obj]
        q = [rel[i, obj] - np.take(np.ascontiguousarray(centre[:, i]), p) for i in range(3)]
        h = [np.take(np.ascontiguousarray(half[:, i]), p) for i in range(3)]
        n = _normals(kind[p], q, h)
        for i in range(3):
            normal[i, obj] = n[i]
        prim[obj] = order[p]  # back to the caller's primitive indices
    return Hits(t_ray, prim, point, normal)


def _pairs(r0, r1, c0, c1, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """All (primitive, ray) pairs of the rectangles, grouped by primitive, as one run of
    consecutive columns per (primitive, row): no per-pair division needed."""
    height = np.maximum(r1 - r0 + 1, 0) * (c1 >= c0)
    run_prim = np.repeat(np.arange(len(r0)), height)  # one entry per (primitive, row)
    run_row = (
        r0[run_prim] + np.arange(len(run_prim)) - np.repeat(np.cumsum(height) - height, height)
    )
    width = (c1 - c0 + 1)[run_prim]
    start = run_row * cols + c0[run_prim]
    total = int(width.sum())
    first = np.cumsum(width) - width
    ray = np.arange(total) + np.repeat(start - first, width)
    prim_of = np.repeat(run_prim, width)
    if (c1 >= cols).any() or (c0 < 0).any():  # LiDAR rectangles crossing azimuth +-pi wrap round
        col = ray - np.repeat(run_row * cols, width)
        ray = ray - col + np.mod(col, cols)
    return prim_of, ray


def _box(inv: list[np.ndarray], lo: list[np.ndarray], hi: list[np.ndarray]) -> np.ndarray:
    """Slab test: t of entry, inf on a miss (a ray starting inside misses)."""
    near, far = None, None
    for i in range(3):
        t1, t2 = lo[i] * inv[i], hi[i] * inv[i]
        a, b = np.minimum(t1, t2), np.maximum(t1, t2)
        near = a if near is None else np.maximum(near, a, out=near)
        far = b if far is None else np.minimum(far, b, out=far)
    return np.where((near <= far) & (near > _EPS), near, np.inf)


def _cylinder(d: list[np.ndarray], c: list[np.ndarray], h: list[np.ndarray]) -> np.ndarray:
    """Vertical capped cylinder: side wall and top cap. The bottom cap always stands on the
    ground or a sidewalk, so no sensor can see it from below."""
    ox, oy, oz = -c[0], -c[1], -c[2]  # ray origin relative to the centre
    dx, dy, dz = d
    r2 = h[0] * h[0]
    a = dx * dx + dy * dy
    b = ox * dx + oy * dy
    disc = b * b - a * (ox * ox + oy * oy - r2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ts = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
        side = (disc >= 0) & (ts > _EPS) & (np.abs(oz + ts * dz) <= h[2])
        tc = (h[2] - oz) / dz
        x, y = ox + tc * dx, oy + tc * dy
        cap = (dz < 0) & (tc > _EPS) & (x * x + y * y <= r2)
    return np.minimum(np.where(side, ts, np.inf), np.where(cap, tc, np.inf))


def _ellipsoid(d: list[np.ndarray], c: list[np.ndarray], h: list[np.ndarray]) -> np.ndarray:
    """Axis-aligned ellipsoid: scale space so it becomes the unit sphere."""
    o = [-c[i] / h[i] for i in range(3)]
    e = [d[i] / h[i] for i in range(3)]
    a = e[0] * e[0] + e[1] * e[1] + e[2] * e[2]
    b = o[0] * e[0] + o[1] * e[1] + o[2] * e[2]
    disc = b * b - a * (o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 1.0)
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    return np.where((disc >= 0) & (t > _EPS), t, np.inf)


def _normals(kind: np.ndarray, q: list[np.ndarray], h: list[np.ndarray]) -> list[np.ndarray]:
    """Outward unit normals (x, y, z component arrays) at points ``q`` relative to each
    primitive's centre, ``h`` its half-extents. Boxes (most hits) first, for every point, then
    the few cylinder and ellipsoid hits are overwritten."""
    qx, qy, qz = q
    # Box: the axis of the face the point lies on is the one it is deepest along (relative to
    # the half-extent); the normal is that axis, signed.
    ax, ay, az = np.abs(qx / h[0]), np.abs(qy / h[1]), np.abs(qz / h[2])
    on_x = (ax >= ay) & (ax >= az)
    on_z = ~on_x & (az > ay)
    on_y = ~on_x & ~on_z
    n = [
        np.where(on_x, np.sign(qx), 0.0),
        np.where(on_y, np.sign(qy), 0.0),
        np.where(on_z, np.sign(qz), 0.0),
    ]
    cyl = np.flatnonzero(kind == KIND_CYLINDER)
    if cyl.size:  # radial on the wall, up on the top cap
        top = qz[cyl] >= h[2][cyl] - 1e-6
        r = np.hypot(qx[cyl], qy[cyl])
        n[0][cyl] = np.where(top, 0.0, qx[cyl] / r)
        n[1][cyl] = np.where(top, 0.0, qy[cyl] / r)
        n[2][cyl] = np.where(top, 1.0, 0.0)
    ell = np.flatnonzero(kind == KIND_ELLIPSOID)
    if ell.size:  # gradient of the implicit function, normalised
        g = [q[i][ell] / (h[i][ell] * h[i][ell]) for i in range(3)]
        norm = np.sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2])
        for i in range(3):
            n[i][ell] = g[i] / norm
    return n
