"""The representations in torch, on the model's device: what training and the node run.

Raw uint8 / uint16 images and the LiDAR points go to the device once (:func:`upload`); every
representation of :mod:`anyseg_model.representations` then runs there (CUDA when the model is
on CUDA, CPU for training's data workers). The numpy functions in ``representations`` are the
reference these are tested against (equal within 1e-6).

How it stays cheap (a few ms per frame set on one CPU core, see BENCHMARKS.md):
- integer images (uint8 / uint16 / int16 / int8) are encoded through a lookup table per
  representation and parameters: one gather per output channel instead of a chain of
  elementwise passes. The table is the float path applied to every code, so both agree exactly.
- with a target ``size`` (the network's input size), sparse inputs (nearest resampling) pick
  their source pixels before encoding, and RGB is resampled before it is normalised: the same
  values as encoding first (exactly for nearest, within float rounding for bilinear).
- the LiDAR z-buffer is two ``scatter_reduce_`` passes (nearest depth, then the highest point
  index among the points at that depth: equal depths resolve the same way on every device), and
  the winners' encoded values are scattered straight into the output. No boolean indexing, so
  nothing waits for the GPU.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .representations import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    MAX_DEPTH_M,
    MIN_DEPTH_M,
    LidarScan,
    Representation,
    _check_image,
    _check_scan,
    image_points,
)

EVENT_DTYPES = (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64)


def upload(a: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """A raw array as a tensor on ``device``: no copy on the CPU, one transfer otherwise."""
    if not a.flags.writeable:  # a message buffer: viewed, never written (torch would warn)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(a)
    else:
        t = torch.from_numpy(a)
    return t.to(device, non_blocking=True)


# ---------------------------------------------------------------- resampling


@lru_cache(maxsize=64)
def _nearest_index(src: int, dst: int, device: str) -> torch.Tensor:
    """The source rows (or columns) F.interpolate(mode='nearest') reads for ``dst`` outputs:
    asked of interpolate itself, so picking them first is exactly the same resampling."""
    ramp = torch.arange(src, dtype=torch.float32).view(1, 1, src, 1)
    picked = F.interpolate(ramp, size=(dst, 1), mode="nearest").view(dst)
    return picked.to(torch.int64).to(device)


def _pick(t: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Nearest resampling of an (H, W[, C]) raw image before encoding (pointwise encoders)."""
    if size is None or tuple(t.shape[:2]) == tuple(size):
        return t
    dev = str(t.device)
    rows = _nearest_index(t.shape[0], size[0], dev)
    cols = _nearest_index(t.shape[1], size[1], dev)
    return t.index_select(0, rows).index_select(1, cols)


def _resize(x: torch.Tensor, size: tuple[int, int] | None, dense: bool) -> torch.Tensor:
    from .preprocess import resize  # the one resampling rule (preprocess imports this module)

    return x if size is None else resize(x, size, dense)


# ---------------------------------------------------------------- lookup tables


@lru_cache(maxsize=32)
def _table(name: str, dtype: str, params: tuple, device: str) -> torch.Tensor:
    """(3, codes) float32 table of a representation for every value of an integer dtype."""
    info = np.iinfo(np.dtype(dtype))
    codes = torch.arange(int(info.min), int(info.max) + 1, dtype=torch.float32)
    fn = {"depth_metric": _depth_float, "event_frame": _event_float}[name]
    return fn(codes, dtype, **dict(params)).to(device)


def _lookup(t: torch.Tensor, name: str, params: dict[str, Any], dtype: np.dtype) -> torch.Tensor:
    """Encode an integer image through its table: (H, W) -> (3, H, W)."""
    table = _table(name, dtype.name, tuple(sorted(params.items())), str(t.device))
    offset = -int(np.iinfo(dtype).min)
    codes = t.reshape(-1).to(torch.int32)
    if offset:
        codes = codes + offset
    return table.index_select(1, codes).view(3, *t.shape)


# ---------------------------------------------------------------- per-representation math


def _depth_float(d: torch.Tensor, dtype: str, max_range_m: float = 80.0) -> torch.Tensor:
    """Depth values as float32 (raw units of ``dtype``) -> (range, inverse depth, validity)."""
    d = d * 1e-3 if dtype == "uint16" else torch.where(torch.isfinite(d) & (d > 0), d, 0.0)
    d = torch.clamp(d, max=max_range_m)
    valid = d > 0
    inv = torch.where(valid, torch.clamp(1.0 / torch.clamp(d, min=1e-6), max=1.0), 0.0)
    return torch.stack([d / max_range_m, inv, valid.to(torch.float32)])


def _event_float(net: torch.Tensor, dtype: str, saturation: float = 4.0) -> torch.Tensor:
    """Net polarity counts (uint8: offset by 128) -> (positive, negative, any event)."""
    net = torch.where(torch.isfinite(net), net, 0.0) - (128.0 if dtype == "uint8" else 0.0)
    return _event_channels(torch.clamp(net, min=0.0), torch.clamp(-net, min=0.0), saturation)


def _event_channels(pos: torch.Tensor, neg: torch.Tensor, saturation: float) -> torch.Tensor:
    return torch.stack(
        [
            torch.clamp(pos / saturation, max=1.0),
            torch.clamp(neg / saturation, max=1.0),
            ((pos + neg) > 0).to(torch.float32),
        ]
    )


def encode_rgb(
    a: np.ndarray,
    device: Any = "cpu",
    size: tuple[int, int] | None = None,
    order: str = "rgb",
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
) -> torch.Tensor:
    """uint8 colour (rgb/bgr) or mono -> ImageNet-normalised (3, H, W); resampled bilinearly
    to ``size`` before the (affine) normalisation."""
    _check_image(a, "rgb", (np.uint8,), (1, 3))
    t = upload(a, device)
    x = t.expand(3, *t.shape) if t.ndim == 2 else t.permute(2, 0, 1)
    if order == "bgr":
        x = x.flip(0)
    x = _resize(x.to(torch.float32), size, dense=True)
    std_t = torch.tensor(std, dtype=torch.float32, device=x.device).view(3, 1, 1)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=x.device).view(3, 1, 1)
    return x.div_(255.0).sub_(mean_t).div_(std_t)  # the reference's operations, in place


def encode_depth(
    a: np.ndarray, device: Any = "cpu", size: tuple[int, int] | None = None, **params: Any
) -> torch.Tensor:
    """uint16 mm or float m -> (range, inverse depth, validity); NaN/Inf/<=0 are no depth."""
    _check_image(a, "depth", (np.uint16, np.float32, np.float64), (1,))
    t = _pick(upload(a, device), size)
    if a.dtype == np.uint16:
        return _lookup(t, "depth_metric", params, a.dtype)
    return _depth_float(t.to(torch.float32), a.dtype.name, **params)


def encode_event(
    a: np.ndarray, device: Any = "cpu", size: tuple[int, int] | None = None, saturation=4.0
) -> torch.Tensor:
    """Event frame (any accepted layout) -> (positive, negative, any event)."""
    _check_image(a, "event", EVENT_DTYPES, (1, 2))
    t = _pick(upload(a, device), size)
    if a.ndim == 3:
        c = t.to(torch.float32)
        c = torch.where(torch.isfinite(c), c, 0.0)
        return _event_channels(
            torch.clamp(c[..., 0], min=0.0), torch.clamp(c[..., 1], min=0.0), saturation
        )
    if a.dtype.itemsize <= 2 and a.dtype.kind in "iu":
        return _lookup(t, "event_frame", {"saturation": saturation}, a.dtype)
    return _event_float(t.to(torch.float32), a.dtype.name, saturation)


def encode_image(
    a: np.ndarray, device: Any = "cpu", size: tuple[int, int] | None = None
) -> torch.Tensor:
    """Pre-rendered uint8 image -> (3, H, W) / 255 (resampled as its modality says)."""
    _check_image(a, "image", (np.uint8,), (1, 3))
    t = upload(a, device)
    x = t.expand(3, *t.shape) if t.ndim == 2 else t.permute(2, 0, 1)
    return x.to(torch.float32) / 255.0


# ---------------------------------------------------------------- LiDAR


class DeviceProjection:
    """A z-buffered projection made on the model's device, with the attributes of
    :class:`~anyseg_model.representations.Projection` as numpy arrays made on first use: the
    node's labelled points read only ``pixel`` (N x 2 to the host), tests read them all."""

    def __init__(self, scan: LidarScan, near, best, keys, u, v) -> None:
        self._scan, self._near, self._best, self._keys, self._u, self._v = (
            scan,
            near,
            best,
            keys,
            u,
            v,
        )
        self._numpy: dict[str, np.ndarray] = {}

    def tensors(self) -> dict[str, torch.Tensor]:
        """depth, intensity, index (H, W) and pixel (N, 2) on the device."""
        w, h = self._scan.image_size
        hw = w * h
        flat, zc, values = self._keys
        n = flat.shape[0]
        # the point index: the highest among the nearest points of the highest intensity
        won = (zc == self._near.gather(0, flat)) & (values == self._best.gather(0, flat))
        ids = torch.where(won, torch.arange(n, device=flat.device), -1)
        index = torch.full((hw + 1,), -1, dtype=torch.int64, device=flat.device)
        index = index.scatter_reduce_(0, flat, ids, "amax")[:hw].view(h, w)
        hit = index >= 0
        return {
            "depth": torch.where(hit, self._near[:hw].view(h, w), 0.0),
            "intensity": torch.where(hit, self._best[:hw].view(h, w), 0.0),
            "index": index,
            "pixel": torch.stack([self._u, self._v], 1).to(torch.int64),
        }

    def _get(self, key: str) -> np.ndarray:
        if key not in self._numpy:
            if key == "pixel":  # the one the node needs: skip the per-pixel images
                t = torch.stack([self._u, self._v], 1).to(torch.int64)
            else:
                t = self.tensors()[key]
            self._numpy[key] = t.cpu().numpy()
        return self._numpy[key]

    depth = property(lambda self: self._get("depth"))
    intensity = property(lambda self: self._get("intensity"))
    index = property(lambda self: self._get("index"))
    pixel = property(lambda self: self._get("pixel"))


def _positive(x: torch.Tensor) -> torch.Tensor:
    """1.0 where a finite x > 0, else 0.0: branch-free (a bool mask costs several times more
    on the CPU, and torch.where with an irregular mask more still)."""
    return torch.sign(x).clamp_(min=0.0)


def _cell(c: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous coordinates -> (floor, 1.0 where 0 <= c < n); NaN/Inf are outside."""
    f = torch.nan_to_num(c, nan=-1.0, posinf=-1.0, neginf=-1.0).clamp_(-1.0, float(n)).floor_()
    return f, _positive(f + 0.5) * _positive((n - 0.5) - f)


def encode_lidar(
    scan: LidarScan,
    device: Any = "cpu",
    size: tuple[int, int] | None = None,
    max_range_m: float = 80.0,
    max_intensity: float = 1.0,
) -> torch.Tensor:
    """LiDAR scan -> (range, intensity, hit) at the camera's size (then ``size``, nearest).

    The projection is kept on the scan (``scan.projection``) for the labelled points.
    """
    if not isinstance(scan, LidarScan):
        raise ValueError(f"lidar: expected a LidarScan, got {type(scan).__name__}")
    pts, w, h = _check_scan(scan)
    hw = w * h
    rows = upload(np.asarray(pts, dtype=np.float32), device).T.contiguous()  # (3|4, N)
    dev = rows.device
    uf, vf, z, unfolded = image_points(rows[:3].T, scan, torch)
    # In front (MIN_DEPTH_M < z < MAX_DEPTH_M), before the fold, inside the image: as 0/1
    # floats, exactly the reference's comparisons (a - b > 0 iff a > b in IEEE arithmetic).
    zc = torch.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)
    keep = _positive(zc - MIN_DEPTH_M) * _positive(MAX_DEPTH_M - zc)
    if unfolded is not None:
        keep *= unfolded
    cu, inside_u = _cell(uf, w)
    cv, inside_v = _cell(vf, h)
    keep *= inside_u
    keep *= inside_v
    u, v = keep * (cu + 1.0) - 1.0, keep * (cv + 1.0) - 1.0  # -1 off the image
    # Pixel index, exact in float32 (hw < 2**24); every point off the image goes to bin hw.
    flat = (keep * (v * w + u - hw) + hw).to(torch.int64)
    values = torch.zeros_like(zc)
    if rows.shape[0] == 4:
        values = torch.nan_to_num(rows[3], nan=0.0, posinf=0.0, neginf=0.0)
    # Z-buffer: the nearest depth per pixel, then the highest intensity among those points.
    near = torch.full((hw + 1,), float("inf"), device=dev).scatter_reduce_(0, flat, zc, "amin")
    won = zc == near.gather(0, flat)
    best = torch.full((hw + 1,), -float("inf"), device=dev)
    best.scatter_reduce_(0, flat, torch.where(won, values, -float("inf")), "amax")
    scan.keep_projection(DeviceProjection(scan, near, best, (flat, zc, values), u, v))

    near, best = near[:hw].view(h, w), best[:hw].view(h, w)
    out = torch.empty((3, h, w), device=dev)  # written in place, channel by channel
    torch.lt(near, MAX_DEPTH_M, out=out[2])  # hit
    torch.clamp(near, max=max_range_m, out=out[0]).div_(max_range_m).mul_(out[2])
    torch.div(best, max_intensity, out=out[1]).clamp_(0.0, 1.0).mul_(out[2])
    return _resize(out, size, dense=False)


_ENCODERS = {
    "rgb": encode_rgb,
    "depth_metric": encode_depth,
    "event_frame": encode_event,
    "lidar_projected": encode_lidar,
    "image": encode_image,
}


def encode_tensor(
    rep: Representation,
    raw: Any,
    device: Any = "cpu",
    size: tuple[int, int] | None = None,
    dense: bool | None = None,
) -> torch.Tensor:
    """raw -> float32 (3, H, W) on ``device`` by ``rep``; at ``size`` when given (resampled
    bilinearly when ``dense``, else nearest: see :func:`anyseg_model.preprocess.is_dense`)."""
    fn = _ENCODERS[rep.name]
    if rep.name == "image":  # pre-rendered: resampled after encoding, as its modality says
        return _resize(fn(raw, device), size, bool(dense))
    return fn(raw, device, size, **rep.params)
