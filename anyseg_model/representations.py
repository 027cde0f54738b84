"""Raw sensor arrays -> the network's 3-channel float inputs (one path for training and node).

Each representation is a named, parameterised function ``raw -> float32 (3, H, W)``. The name and
parameters a model was trained with travel in its checkpoint (``Representation.to_dict``), and the
node rebuilds exactly the same one from there.

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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class LidarScan:
    """A LiDAR sweep and the camera it is projected into.

    points: (N, 3) or (N, 4) float, x, y, z [, intensity] in the LiDAR frame.
    camera_matrix: (3, 3) K of the camera. distortion: plumb-bob D (k1, k2, p1, p2[, k3]) or None.
    extrinsic: (4, 4) transform taking LiDAR-frame points into the camera optical frame.
    image_size: (width, height) of the camera image.
    """

    points: np.ndarray
    camera_matrix: np.ndarray
    extrinsic: np.ndarray
    image_size: tuple[int, int]
    distortion: np.ndarray | None = None

    @cached_property
    def projection(self) -> Projection:
        """The z-buffered projection, computed once: the model's input and the node's labelled
        points both need it."""
        return project_lidar(self)


@dataclass(frozen=True)
class Projection:
    """A z-buffered projection: per pixel the nearest point's depth (0 = no point), its intensity
    and its index into the scan (-1 = no point); per point its pixel (-1 where off-image)."""

    depth: np.ndarray  # (H, W) float32, metres along the optical axis
    intensity: np.ndarray  # (H, W) float32
    index: np.ndarray  # (H, W) int64
    pixel: np.ndarray  # (N, 2) int64 (u, v), -1 where the point is behind or off the image


def project_lidar(scan: LidarScan, min_depth: float = 0.1) -> Projection:
    """Project LiDAR points into the camera with K, D and the extrinsic; nearest point wins."""
    pts = np.asarray(scan.points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] not in (3, 4):
        raise ValueError(f"lidar points must be (N, 3) or (N, 4), got {pts.shape}")
    K = np.asarray(scan.camera_matrix, dtype=np.float64).reshape(3, 3)
    T = np.asarray(scan.extrinsic, dtype=np.float64).reshape(4, 4)
    w, h = (int(s) for s in scan.image_size)
    if w <= 0 or h <= 0:
        raise ValueError(f"image_size must be positive (width, height), got {scan.image_size}")
    n = len(pts)
    finite = np.isfinite(pts[:, :3]).all(axis=1)
    cam = pts[:, :3] @ T[:3, :3].T + T[:3, 3]  # (N, 3) in the camera optical frame
    z = cam[:, 2]
    front = finite & (z > min_depth)
    x = np.where(front, cam[:, 0] / np.where(front, z, 1.0), 0.0)
    y = np.where(front, cam[:, 1] / np.where(front, z, 1.0), 0.0)
    if scan.distortion is not None and np.any(np.asarray(scan.distortion) != 0):
        x, y = _distort(x, y, np.asarray(scan.distortion, dtype=np.float64))
    u = np.floor(K[0, 0] * x + K[0, 1] * y + K[0, 2]).astype(np.int64)
    v = np.floor(K[1, 1] * y + K[1, 2]).astype(np.int64)
    ok = front & (u >= 0) & (u < w) & (v >= 0) & (v < h)

    pixel = np.full((n, 2), -1, dtype=np.int64)
    pixel[ok] = np.stack([u[ok], v[ok]], axis=1)
    idx = np.flatnonzero(ok)
    flat = v[idx] * w + u[idx]
    zi = z[idx].astype(np.float32)
    # Z-buffer without sorting: the per-pixel minimum depth, then the points that reach it.
    nearest = np.full(h * w, np.inf, np.float32)
    np.minimum.at(nearest, flat, zi)
    won = zi == nearest[flat]  # equal-depth ties: one of them, the same one every time
    depth = np.where(np.isfinite(nearest), nearest, 0.0).astype(np.float32).reshape(h, w)
    index = np.full(h * w, -1, np.int64)
    index[flat[won]] = idx[won]
    index = index.reshape(h, w)
    intensity = np.zeros((h, w), np.float32)
    if pts.shape[1] == 4:
        hit = index >= 0
        intensity[hit] = pts[index[hit], 3]
    return Projection(depth, intensity, index, pixel)


def _distort(x: np.ndarray, y: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Plumb-bob (radial-tangential) distortion of normalised image coordinates."""
    k1, k2, p1, p2 = (list(d[:4]) + [0.0] * 4)[:4]
    k3 = d[4] if d.size > 4 else 0.0
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


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
    """Any accepted event-frame layout -> (positive, negative) counts, float32 (H, W) each."""
    _check_image(
        a, "event", (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64), (1, 2)
    )
    if a.ndim == 3:
        return a[..., 0].astype(np.float32), a[..., 1].astype(np.float32)
    net = a.astype(np.float32) - (128.0 if a.dtype == np.uint8 else 0.0)
    return np.maximum(net, 0.0), np.maximum(-net, 0.0)


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


@dataclass(frozen=True)
class Representation:
    """A named representation with its parameters; serialisable into checkpoints."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in _ENCODERS:
            raise ValueError(f"unknown representation {self.name!r}; valid: {sorted(_ENCODERS)}")

    def __call__(self, raw: Any) -> np.ndarray:
        return _ENCODERS[self.name](raw, **self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str) -> Representation:
        if isinstance(d, str):
            return cls(d)
        return cls(d["name"], dict(d.get("params", {})))
