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
- the LiDAR projection is two compiled loops on the CPU (:mod:`anyseg_model.lidar_kernel`), and
  branch-free scatter_reduce_ passes on a GPU (:mod:`anyseg_model.lidar_encoding`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch

from .lidar_encoding import encode_lidar
from .representations import IMAGENET_MEAN, IMAGENET_STD, Representation, _check_image
from .tensors import bilinear_uint8, pick, resize, upload

EVENT_DTYPES = (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64)


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
    if size is None or tuple(size) == a.shape[:2]:
        x = _planar(t, flip=order == "bgr")
    else:  # resampled first (four uint8 taps per output), then normalised: the same values
        x = bilinear_uint8(t if t.ndim == 3 else t[..., None], size).expand(3, *size)
        x = (x.flip(0) if order == "bgr" else x).contiguous()
    x.div_(255.0)  # the reference's operations, in place, one plane at a time
    for c in range(3):
        x[c].sub_(float(np.float32(mean[c]))).div_(float(np.float32(std[c])))
    return x


def _planar(t: torch.Tensor, flip: bool = False) -> torch.Tensor:
    """uint8 (H, W, 3) or (H, W) -> contiguous float32 (3, H, W) in one pass. Converting the
    permuted view directly would keep its interleaved strides, and every later per-channel
    operation on those is several times slower."""
    view = t.expand(3, *t.shape) if t.ndim == 2 else t.permute(2, 0, 1)
    if flip:
        view = view.flip(0)
    return torch.empty(view.shape, dtype=torch.float32, device=t.device).copy_(view)


def encode_depth(
    a: np.ndarray, device: Any = "cpu", size: tuple[int, int] | None = None, **params: Any
) -> torch.Tensor:
    """uint16 mm or float m -> (range, inverse depth, validity); NaN/Inf/<=0 are no depth."""
    _check_image(a, "depth", (np.uint16, np.float32, np.float64), (1,))
    t = pick(upload(a, device), size)
    if a.dtype == np.uint16:
        return _lookup(t, "depth_metric", params, a.dtype)
    return _depth_float(t.to(torch.float32), a.dtype.name, **params)


def encode_event(
    a: np.ndarray, device: Any = "cpu", size: tuple[int, int] | None = None, saturation=4.0
) -> torch.Tensor:
    """Event frame (any accepted layout) -> (positive, negative, any event)."""
    _check_image(a, "event", EVENT_DTYPES, (1, 2))
    t = pick(upload(a, device), size)
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
    return _planar(upload(a, device)).div_(255.0)


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
        x = fn(raw, device)
        return x if size is None else resize(x, size, bool(dense))
    return fn(raw, device, size, **rep.params)
