"""The LiDAR projection's per-point work on the CPU as compiled loops (numba).

The torch path (:mod:`anyseg_model.lidar_encoding`) makes about 34 passes over the points: the
camera model, the depth range test, the cells, the tables of the read pixels, the compaction.
Here one vectorised loop does the extrinsic, camera model and K, the range test and the index
into the padded image (``Projection.flat``) of each point, and a second one z-buffers the points
on the pixels the network input reads, in place: 2.7-4.4x faster at 100,000 points into a
128x96 input, 1.4x for a fisheye, whose arctan keeps its loop scalar (BENCHMARKS.md, section
6.1). The arithmetic is float32 in the order of :func:`~anyseg_model.representations.
image_points` and :func:`~anyseg_model.camera.distort`, with each constant rounded as numpy and
torch round it (a product of two Python floats in float64 first, then to float32), so the
outputs equal the torch path's bit for bit (tests/model/test_lidar_kernel.py) and the numpy
reference's. The one exception is the fisheye's arctan, which no two libraries round alike: a
point within a float32 ulp of a pixel's edge may land on its neighbour, as it may between the
numpy reference and torch.

Compiled on first use (about 1.6 s, cached in ``__pycache__`` after: about 0.2 s with the
import of numba); the node's warm-up pays it. Where numba is missing (:func:`available`), the
torch path runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from .representations import MAX_DEPTH_M, MIN_DEPTH_M, LidarScan
from .tensors import nearest_index

F32 = np.float32
_MODELS = {None: 0, "plumb_bob": 1, "rational_polynomial": 2, "equidistant": 3}
# literals of the camera model as float32 (float32 * a Python float stays float32 in numpy and
# torch; in numba it would be float64)
_0, _1, _2, _3, _9, _M1 = (F32(v) for v in (0.0, 1.0, 2.0, 3.0, 9.0, -1.0))
_AXIS = F32(1e-8)
_NEAR, _FAR = F32(MIN_DEPTH_M), F32(MAX_DEPTH_M)


@functools.lru_cache(maxsize=64)
def read_table(src: int, dst: int) -> np.ndarray:
    """int32 (src + 2,): for a cell c in -1..src (-1 and src: off the image), at c + 1 the
    output index that nearest resampling to ``dst`` gives source c, else -1 (downsampling reads
    each source at most once; dst == src: c itself)."""
    table = np.full(src + 2, -1, np.int32)
    table[nearest_index(src, dst, "cpu").numpy() + 1] = np.arange(dst, dtype=np.int32)
    table.flags.writeable = False
    return table


@functools.lru_cache(maxsize=8)
def read_cells(w: int, h: int, gw: int, gh: int) -> np.ndarray:
    """int32 ((H + 2) * (W + 2),): per pixel of the image padded by one pixel (the index of
    ``Projection.flat``), the one of the gw x gh grid that nearest resampling reads it into, or
    -1 (not read, or on the border: off the image). 1.2 MB at 640 x 480: one gather per point
    instead of two, and no division to split ``flat`` into row and column."""
    i, j = read_table(h, gh)[:, None], read_table(w, gw)[None, :]
    cells = np.where((i >= 0) & (j >= 0), i * gw + j, -1).astype(np.int32).reshape(-1)
    cells.flags.writeable = False
    return cells


def available() -> bool:
    """Whether the compiled loops run (imports numba: call it only where the CPU projection
    runs)."""
    return _compiled() is not None


def project_scan(scan: LidarScan, rows: np.ndarray, grid: tuple[int, int]):
    """(near, best, flat) of :func:`project` for ``rows`` (3|4, N) of ``scan``, z-buffered at
    ``grid`` (H, W): the camera's size or smaller (its nearest-resampled pixels)."""
    w, h = (int(s) for s in scan.image_size)
    gh, gw = grid
    near = np.full(gh * gw, np.inf, np.float32)
    best = np.full(gh * gw, -np.inf, np.float32)
    flat = np.empty(rows.shape[1], np.int32)
    depth = np.empty(rows.shape[1], np.float32)
    c, model = constants(scan)
    view = rows.view()
    view.flags.writeable = False  # one compiled version: inputs always read-only
    _compiled()(view, c, model, w, h, read_cells(w, h, gw, gh), near, best, flat, depth)
    return near, best, flat


def constants(scan: LidarScan) -> tuple[np.ndarray, int]:
    """(float32 constants, model code) of the scan's camera for :func:`project`: the extrinsic's
    3 x 4 rows, K's fx, skew, cx, fy, cy, then the distortion's terms in the kernel's order."""
    t = np.asarray(scan.extrinsic, dtype=np.float64).reshape(-1)[:12]
    k = np.asarray(scan.camera_matrix, dtype=np.float64).reshape(-1)[[0, 1, 2, 4, 5]]
    c = scan.coefficients
    model = None if c is None else scan.distortion_model
    d = np.zeros(12)  # every model's slots exist: the kernel reads them before its loops
    if model == "equidistant":
        k1, k2, k3, k4 = c
        d[:7] = [k1, k2, k3, k4, 3.0 * k1, 5.0 * k2, 7.0 * k3]
    elif model is not None:
        k1, k2, p1, p2, k3, *rest = c
        k4, k5, k6 = rest or (0.0, 0.0, 0.0)
        d[:] = [k1, k2, p1, p2, k3, 2.0 * k2, 2.0 * p1, 2.0 * p2, k4, k5, k6, 2.0 * k5]
    out = np.concatenate([t, k, d]).astype(np.float32)
    out.flags.writeable = False
    return out, _MODELS[model]


def project(
    rows: np.ndarray,
    c: np.ndarray,
    model: int,
    w: int,
    h: int,
    cells: np.ndarray,
    near: np.ndarray,
    best: np.ndarray,
    flat: np.ndarray,
    depth: np.ndarray,
) -> None:
    """Project the (3|4, N) float32 ``rows`` (x, y, z[, intensity]) into a w x h camera.

    Writes ``flat`` (N,) int32: the index into the image padded by one pixel, 0 for the points
    out of the depth range. Z-buffers the points into ``near`` and ``best`` (the nearest depth,
    inf where none; the highest intensity among the points at it) at ``cells[flat]``, where
    that is not -1 (:func:`read_cells`). ``depth`` (N,) float32 is scratch.
    """

    def term(v: np.float32, coefficient: np.float32) -> np.float32:
        # v * coefficient, or 0 for a zero coefficient whatever v, as _affine skips the term:
        # the sums below then equal _affine's (adding 0.0 changes only the sign of a zero)
        return v * coefficient if coefficient != 0 else _0

    def normalised(p: int):
        """(X/Z, Y/Z, Z) in the camera frame."""
        X, Y, Z = rows[0, p], rows[1, p], rows[2, p]
        xc = term(X, c[0]) + term(Y, c[1]) + term(Z, c[2]) + c[3]
        yc = term(X, c[4]) + term(Y, c[5]) + term(Z, c[6]) + c[7]
        z = term(X, c[8]) + term(Y, c[9]) + term(Z, c[10]) + c[11]
        return xc / z, yc / z, z

    def store(p: int, x: np.float32, y: np.float32, z: np.float32, unfolded: bool) -> None:
        """K, the depth range and the cell -> flat[p] and depth[p]."""
        u = term(x, c[12]) + term(y, c[13]) + c[14]  # fx x + skew y + cx
        v = term(y, c[15]) + c[16]  # fy y + cy
        front = (z > _NEAR) & (z < _FAR) & unfolded
        # cells -1..W (H): floor of the clamped coordinate; -1 when not finite
        cu = int(math.floor(min(max(u if math.isfinite(u) else _M1, _M1), F32(w))))
        cv = int(math.floor(min(max(v if math.isfinite(v) else _M1, _M1), F32(h))))
        flat[p] = (cv + 1) * (w + 2) + cu + 1 if front else 0
        depth[p] = z

    # The per-point loops hold neither a data-dependent branch (selects only) nor a table
    # lookup (a gather), so LLVM vectorises them: as scalar code they are 10x slower. The
    # fisheye's arctan has no vector form here, so it has a loop of its own.
    if model == 3:  # equidistant
        k1, k2, k3, k4 = c[17], c[18], c[19], c[20]
        for p in range(rows.shape[1]):
            x, y, z = normalised(p)
            r = np.sqrt(x * x + y * y)
            # The float64 arctan, rounded: torch's float32 one to the last bit but for 2 in
            # 10,000 (libm's float32 one differs in 6 in 100, numpy's in 28, by one ulp). None
            # for the points out of the depth range (most of a 360-degree LiDAR's), whose flat
            # is 0 whatever the rest gives.
            theta = F32(math.atan(r)) if (z > _NEAR) & (z < _FAR) else _0
            t2 = theta * theta
            poly = _1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))
            slope = _1 + t2 * (c[21] + t2 * (c[22] + t2 * (c[23] + t2 * _9 * k4)))
            # theta_d / r, and its limit 1 on the optical axis
            scale = theta * poly / (r if r > _AXIS else _1) if r > _AXIS else _1
            store(p, x * scale, y * scale, z, slope > 0)
    elif model == 0:  # rectified
        for p in range(rows.shape[1]):
            x, y, z = normalised(p)
            store(p, x, y, z, True)
    else:  # plumb_bob, rational_polynomial (k4..k6 = 0 for plumb_bob, unused)
        k1, k2, p1, p2, k3, k4, k5, k6 = c[17], c[18], c[19], c[20], c[21], c[25], c[26], c[27]
        for p in range(rows.shape[1]):
            x, y, z = normalised(p)
            r2 = x * x + y * y
            num = _1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dnum = k1 + r2 * (c[22] + r2 * _3 * k3)  # d num / d r2
            if model == 2:
                den = _1 + r2 * (k4 + r2 * (k5 + r2 * k6))
                dden = k4 + r2 * (c[28] + r2 * _3 * k6)
                radial = num / den
                dradial = (dnum * den - num * dden) / (den * den)
                unfolded = (den > 0) & (radial + _2 * r2 * dradial > 0)
            else:
                radial = num
                unfolded = radial + _2 * r2 * dnum > 0  # d(r * radial)/dr > 0
            xy = x * y
            xd = x * radial + c[23] * xy + p2 * (r2 + _2 * x * x)
            yd = y * radial + p1 * (r2 + _2 * y * y) + c[24] * xy
            store(p, xd, yd, z, unfolded)
    # The z-buffer, a scatter: scalar, and only the points on a read pixel (a few percent at
    # 640 x 480 -> 128 x 96) get past the first test.
    intensity = rows.shape[0] == 4
    for p in range(rows.shape[1]):
        q = cells[flat[p]]
        if q < 0:
            continue
        z = depth[p]
        value = rows[3, p] if intensity and math.isfinite(rows[3, p]) else _0
        if z < near[q]:
            near[q], best[q] = z, value
        elif z == near[q] and value > best[q]:
            best[q] = value


@functools.cache
def _compiled() -> Callable | None:
    """:func:`project` compiled with numba, or None where numba is missing."""
    try:
        from numba import njit
    except ImportError:
        return None
    # error_model numpy: x / 0 is inf (points on the camera plane), not ZeroDivisionError
    options = {"nogil": True, "error_model": "numpy"}
    try:
        return njit(cache=True, **options)(project)
    except RuntimeError:  # no writable cache directory (a read-only install, no home)
        return njit(cache=False, **options)(project)
