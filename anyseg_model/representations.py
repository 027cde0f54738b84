"""Raw sensor arrays -> the network's 3-channel float inputs: the registry and its reference.

Each representation is a named, parameterised function ``raw -> float32 (3, H, W)``. The name and
parameters a model was trained with travel in its checkpoint (``Representation.to_dict``), and the
node rebuilds exactly the same one from there. Training and the node encode with the torch
implementation (:mod:`anyseg_model.encoding`, on the model's device); the numpy functions here
are its reference (tested equal within 1e-6) and what the torch-free synthetic world uses. This
module loads without torch.

Wire formats accepted (what the node decodes from ROS messages, what the synthetic world writes):
- rgb:   uint8 (H, W, 3) in ``rgb`` or ``bgr`` order, or (H, W) mono (replicated).
- depth: uint16 (H, W) millimetres with 0 = invalid, or float32 (H, W) metres with NaN/Inf/<=0
         invalid (REP 118).
- event: an accumulated event frame: signed net polarity counts per pixel, either int/float (H, W),
         (H, W, 2) positive/negative counts, or uint8 (H, W) offset by 128 (128 = no event,
         128 + n = n net positive events; the synthetic world publishes this as mono8).
- lidar: a :class:`LidarScan` (points in the LiDAR frame + camera intrinsics + lidar->camera
         extrinsic + image size), projected here with a z-buffer (nearest point wins).
- image: a pre-rendered uint8 (H, W, 3) image (DELIVER's HHA/depth/event/lidar PNGs): /255.

No non-finite value leaves an encoder: a NaN/Inf depth is "no measurement", a NaN/Inf event
pixel "no event", a LiDAR point with a non-finite coordinate is not projected and a non-finite
intensity counts as 0; only the poisoned pixels change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .camera import distort, distortion_coefficients

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class LidarScan:
    """A LiDAR sweep and the camera it is projected into.

    points: (N, 3) or (N, 4) float, x, y, z [, intensity] in the LiDAR frame.
    camera_matrix: (3, 3) K of the camera.
    extrinsic: (4, 4) transform taking LiDAR-frame points into the camera optical frame.
    image_size: (width, height) of the camera image.
    distortion: D of ``distortion_model`` (see :mod:`anyseg_model.camera`): plumb_bob
    (k1, k2, p1, p2[, k3]), rational_polynomial (k1, k2, p1, p2, k3, k4, k5, k6) or equidistant
    (k1..k4); None or all zeros for a rectified camera. Checked when the scan is made.
    """

    points: np.ndarray
    camera_matrix: np.ndarray
    extrinsic: np.ndarray
    image_size: tuple[int, int]
    distortion: np.ndarray | None = None
    distortion_model: str = "plumb_bob"

    def __post_init__(self) -> None:
        # D checked once (raises naming the bad value), kept zero-padded or None (undistorted)
        self.__dict__["coefficients"] = distortion_coefficients(
            self.distortion, self.distortion_model
        )

    @cached_property
    def coefficients(self) -> tuple[float, ...] | None:
        """D zero-padded to its model's length, or None for an undistorted camera."""
        return distortion_coefficients(self.distortion, self.distortion_model)

    @property
    def projection(self) -> Projection:
        """The z-buffered projection, computed once per scan and shared by the model's input and
        the node's labelled points: the one the model's preprocessing made on its device
        (:mod:`anyseg_model.encoding`), or else the numpy reference."""
        cached = self.__dict__.get("_projection")
        if cached is None:
            cached = project_lidar(self)
            self.keep_projection(cached)
        return cached

    def keep_projection(self, projection: Any) -> None:
        """Remember ``projection`` as this scan's (the preprocessing on the device calls it)."""
        self.__dict__["_projection"] = projection  # a cache, not a field: frozen stays frozen


@dataclass(frozen=True)
class Projection:
    """A z-buffered projection: per pixel the nearest point's depth (0 = no point), its intensity
    and its index into the scan (-1 = no point); per point its pixel (-1 where off-image) and
    that pixel's flat index (what labelling the points needs)."""

    depth: np.ndarray  # (H, W) float32, metres along the optical axis
    intensity: np.ndarray  # (H, W) float32, 0 where the intensity is not finite
    index: np.ndarray  # (H, W) int64
    pixel: np.ndarray  # (N, 2) int64 (u, v), -1 where the point is behind or off the image
    # (N,) int32 index into the image padded by one pixel all round, (v + 1) * (W + 2) + u + 1;
    # on the border (0 where behind) when the point is off the image
    flat: np.ndarray


MIN_DEPTH_M = 0.1  # points nearer than this to the camera plane are not projected
MAX_DEPTH_M = 1e4  # nor farther than this (a return from 10 km is not one)


def image_points(xyz: Any, scan: LidarScan, xp: Any) -> tuple[Any, Any, Any, Any]:
    """LiDAR-frame points (N, 3) -> continuous pixel coordinates (u, v), camera depth z, and
    whether each point is before the distortion model's fold (None: no distortion). Points
    behind the camera come out as garbage (even NaN): the caller keeps MIN_DEPTH_M < z <
    MAX_DEPTH_M. ``xp`` is the array module of ``xyz`` (numpy or torch): the numpy reference
    and the torch path run these very operations, elementwise, in this order."""
    T = [float(v) for v in np.asarray(scan.extrinsic, dtype=np.float64).reshape(-1)]
    K = [float(v) for v in np.asarray(scan.camera_matrix, dtype=np.float64).reshape(-1)]
    X, Y, Z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    xc, yc, z = (_affine(T[4 * r : 4 * r + 3], T[4 * r + 3], (X, Y, Z), xp) for r in range(3))
    x, y = xc / z, yc / z
    unfolded = None
    if scan.coefficients is not None:
        x, y, unfolded = distort(x, y, scan.coefficients, scan.distortion_model, xp)
    return _affine(K[0:2], K[2], (x, y), xp), _affine(K[4:5], K[5], (y,), xp), z, unfolded


def _affine(coefficients: list[float], offset: float, columns: tuple, xp: Any) -> Any:
    """sum(c * column) + offset, skipping zero coefficients (an extrinsic that permutes axes
    needs a third of the operations). Still not finite when a used column is not: every
    column of a rotation has a non-zero entry, so a NaN/Inf coordinate reaches x, y or z."""
    terms = [(c, v) for c, v in zip(coefficients, columns, strict=True) if c != 0.0]
    if not terms:
        return xp.zeros_like(columns[0]) + offset
    acc = terms[0][1] * terms[0][0]  # a new array: the += below must not write a column
    for c, v in terms[1:]:
        acc += v * c
    if offset != 0.0:
        acc += offset
    return acc


def _check_scan(scan: LidarScan) -> tuple[np.ndarray, int, int]:
    pts = np.asarray(scan.points)
    if pts.ndim != 2 or pts.shape[1] not in (3, 4):
        raise ValueError(f"lidar points must be (N, 3) or (N, 4), got {pts.shape}")
    w, h = (int(s) for s in scan.image_size)
    if w <= 0 or h <= 0:
        raise ValueError(f"image_size must be positive (width, height), got {scan.image_size}")
    # Pixel indices, also into the image padded by one pixel (``Projection.flat``), are exact
    # in float32 below 2^24 (4093 x 4093 at most).
    if (w + 2) * (h + 2) >= 1 << 24:
        raise ValueError(f"image_size {w}x{h} too large to project into (at most 16.7 Mpx)")
    return pts, w, h


def project_lidar(scan: LidarScan) -> Projection:
    """The numpy reference of the projection (float32, like the torch path): extrinsic, camera
    model and K; the nearest point per pixel wins; among equally near points the highest
    intensity, then the highest point index."""
    pts, w, h = _check_scan(scan)
    n = len(pts)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # points behind
        uf, vf, z, unfolded = image_points(pts[:, :3].astype(np.float32), scan, np)
        ok = (z > np.float32(MIN_DEPTH_M)) & (z < np.float32(MAX_DEPTH_M))
        ok &= (uf >= 0) & (uf < w) & (vf >= 0) & (vf < h)  # as floats: NaN is never in
    if unfolded is not None:
        ok &= unfolded
    idx = np.flatnonzero(ok)
    u, v = np.floor(uf[idx]).astype(np.int64), np.floor(vf[idx]).astype(np.int64)
    pixel = np.full((n, 2), -1, dtype=np.int64)
    pixel[idx, 0], pixel[idx, 1] = u, v
    flat = v * w + u
    zi = z[idx]
    # Z-buffer without sorting: the per-pixel minimum depth, then among the points that reach
    # it the highest intensity, then the highest index (the same on every device).
    nearest = np.full(h * w, np.inf, np.float32)
    np.minimum.at(nearest, flat, zi)
    won = zi == nearest[flat]
    values = np.zeros(n, np.float32)
    if pts.shape[1] == 4:
        values = pts[:, 3].astype(np.float32)
        values = np.where(np.isfinite(values), values, np.float32(0.0))
    best = np.full(h * w, -np.inf, np.float32)
    np.maximum.at(best, flat[won], values[idx[won]])
    won &= values[idx] == best[flat]
    index = np.full(h * w, -1, np.int64)
    np.maximum.at(index, flat[won], idx[won])
    index = index.reshape(h, w)
    hit = index >= 0
    depth = np.where(hit, nearest.reshape(h, w), np.float32(0.0))
    intensity = np.where(hit, best.reshape(h, w), np.float32(0.0))
    flat_all = np.zeros(n, np.int32)
    flat_all[idx] = (v + 1) * (w + 2) + u + 1
    return Projection(depth, intensity, index, pixel, flat_all)


# ---------------------------------------------------------------- per-modality encoders


def _check_image(
    a: np.ndarray, name: str, dtypes: tuple[type, ...], channels: tuple[int, ...]
) -> None:
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.dtype.type not in dtypes:
        raise ValueError(
            f"{name}: dtype {a.dtype} not accepted; allowed {[np.dtype(t).name for t in dtypes]}"
        )
    ch = 1 if a.ndim == 2 else (a.shape[2] if a.ndim == 3 else -1)
    if ch not in channels or min(a.shape[:2]) == 0:
        raise ValueError(
            f"{name}: shape {a.shape} not accepted; want (H, W) or (H, W, C) with C in {channels}"
        )


def encode_rgb(
    a: np.ndarray, order: str = "rgb", mean=IMAGENET_MEAN, std=IMAGENET_STD
) -> np.ndarray:
    """uint8 colour (rgb/bgr) or mono image -> ImageNet-normalised (3, H, W)."""
    _check_image(a, "rgb", (np.uint8,), (1, 3))
    img = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a
    if order == "bgr":
        img = img[..., ::-1]
    x = img.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def depth_metres(a: np.ndarray) -> np.ndarray:
    """uint16 millimetres or float metres -> float32 metres with 0 where invalid."""
    _check_image(a, "depth", (np.uint16, np.float32, np.float64), (1,))
    if a.dtype == np.uint16:
        return a.astype(np.float32) * 1e-3
    d = a.astype(np.float32)
    return np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)


def encode_depth(a: np.ndarray, max_range_m: float = 80.0) -> np.ndarray:
    """Metric depth -> (range, inverse depth, validity), each in [0, 1].

    Range is linear (far structure), inverse depth resolves near geometry, validity tells the
    network where there is no measurement rather than letting 0 look like "very near".
    """
    d = np.minimum(depth_metres(a), max_range_m)
    valid = d > 0
    rng = d / max_range_m
    inv = np.where(valid, np.minimum(1.0, 1.0 / np.maximum(d, 1e-6)), 0.0)
    return np.stack([rng, inv, valid]).astype(np.float32)


def event_counts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Any accepted event-frame layout -> (positive, negative) counts, float32 (H, W) each;
    a non-finite pixel counts as no event, negative two-channel counts as zero."""
    _check_image(
        a, "event", (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64), (1, 2)
    )
    if a.ndim == 3:
        pos, neg = _finite(a[..., 0]), _finite(a[..., 1])
        return np.maximum(pos, 0.0), np.maximum(neg, 0.0)
    net = _finite(a) - (128.0 if a.dtype == np.uint8 else 0.0)
    return np.maximum(net, 0.0), np.maximum(-net, 0.0)


def _finite(a: np.ndarray) -> np.ndarray:
    """float32 copy with NaN/Inf (not a count) replaced by 0 (no event)."""
    x = a.astype(np.float32)
    return np.where(np.isfinite(x), x, np.float32(0.0))


def encode_event(a: np.ndarray, saturation: float = 4.0) -> np.ndarray:
    """Event frame -> (positive, negative, any-event), counts saturating at ``saturation``."""
    pos, neg = event_counts(a)
    return np.stack(
        [
            np.minimum(pos / saturation, 1.0),
            np.minimum(neg / saturation, 1.0),
            ((pos + neg) > 0).astype(np.float32),
        ]
    ).astype(np.float32)


def encode_lidar(
    scan: LidarScan, max_range_m: float = 80.0, max_intensity: float = 1.0
) -> np.ndarray:
    """LiDAR scan -> projected (range, intensity, hit) image at the camera's size."""
    if not isinstance(scan, LidarScan):
        raise ValueError(f"lidar: expected a LidarScan, got {type(scan).__name__}")
    p = scan.projection
    hit = p.depth > 0
    rng = np.minimum(p.depth, max_range_m) / max_range_m
    inten = np.clip(p.intensity / max_intensity, 0.0, 1.0) * hit
    return np.stack([rng, inten, hit]).astype(np.float32)


def encode_image(a: np.ndarray) -> np.ndarray:
    """Pre-rendered uint8 image (DELIVER PNGs) -> (3, H, W) in [0, 1]."""
    _check_image(a, "image", (np.uint8,), (1, 3))
    img = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a
    return np.ascontiguousarray(img.transpose(2, 0, 1).astype(np.float32) / 255.0)


_ENCODERS: dict[str, Callable[..., np.ndarray]] = {
    "rgb": encode_rgb,
    "depth_metric": encode_depth,
    "event_frame": encode_event,
    "lidar_projected": encode_lidar,
    "image": encode_image,
}

# What a model trained on raw sensor data uses for each modality (the node's default).
DEFAULT_REPRESENTATIONS: dict[str, str] = {
    "rgb": "rgb",
    "depth": "depth_metric",
    "event": "event_frame",
    "lidar": "lidar_projected",
}


def _positive(low: float = 1e-6, high: float = 1e9) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and low <= v <= high
        return None if ok else f"must be a number in [{low:g}, {high:g}]"

    return check


def _triple(low: float, high: float) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = (
            isinstance(v, (list, tuple))
            and len(v) == 3
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in v)
            and all(low <= c <= high for c in v)
        )
        return None if ok else f"must be 3 numbers in [{low:g}, {high:g}]"

    return check


def _order(v: Any) -> str | None:
    return None if v in ("rgb", "bgr") else "must be 'rgb' or 'bgr'"


# Each representation's parameters and their checks (a message, or None when the value is
# fine). Bounds keep every encoder finite in float32: a range of 0 would divide by zero.
_PARAMS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "rgb": {"order": _order, "mean": _triple(-1e3, 1e3), "std": _triple(1e-3, 1e3)},
    "depth_metric": {"max_range_m": _positive()},
    "event_frame": {"saturation": _positive()},
    "lidar_projected": {
        "max_range_m": _positive(),
        "max_intensity": _positive(),
    },
    "image": {},
}


@dataclass(frozen=True)
class Representation:
    """A named representation with its parameters; serialisable into checkpoints.

    Parameters are checked when it is built (a checkpoint's too): an unknown name or a value
    that would make the encoding non-finite is one ValueError naming it. ``encode`` is the
    production path (torch, on any device: :mod:`anyseg_model.encoding`); calling the
    representation gives the same values as a numpy array (torch on the CPU); ``reference``
    is the numpy implementation the torch one is tested against.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in _ENCODERS:
            raise ValueError(f"unknown representation {self.name!r}; valid: {sorted(_ENCODERS)}")
        if not isinstance(self.params, Mapping):
            raise ValueError(
                f"representation {self.name!r}: params must be a mapping, got {self.params!r}"
            )
        checks = _PARAMS[self.name]
        for key, value in self.params.items():
            if key not in checks:
                raise ValueError(
                    f"representation {self.name!r}: unknown parameter {key!r}; "
                    f"valid: {sorted(checks)}"
                )
            problem = checks[key](value)
            if problem:
                raise ValueError(f"representation {self.name!r}: {key} = {value!r} {problem}")

    def encode(self, raw: Any, device: Any = "cpu") -> Any:
        """raw -> float32 (3, H, W) torch tensor on ``device``."""
        from .encoding import encode_tensor  # torch only when encoding, not to name one

        return encode_tensor(self, raw, device)

    def __call__(self, raw: Any) -> np.ndarray:
        return self.encode(raw).numpy()

    def reference(self, raw: Any) -> np.ndarray:
        """The numpy reference implementation (float32 (3, H, W))."""
        return _ENCODERS[self.name](raw, **self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | str) -> Representation:
        """``'rgb'`` or ``{'name': 'rgb', 'params': {...}}`` (what checkpoints hold)."""
        if isinstance(d, str):
            return cls(d)
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str):
            raise ValueError(f"a representation is a name or {{name, params}}, got {d!r}")
        params = d.get("params") or {}
        if not isinstance(params, Mapping):
            raise ValueError(f"representation {d['name']!r}: params must be a mapping")
        return cls(d["name"], dict(params))
