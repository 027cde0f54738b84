"""Small tensor helpers of the preprocessing: raw arrays onto a device, the one resampling rule.

Kept apart so :mod:`anyseg_model.encoding`, :mod:`anyseg_model.lidar_encoding` and
:mod:`anyseg_model.preprocess` share them without importing one another in a circle.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F


def upload(a: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """A raw array as a tensor on ``device``: no copy on the CPU, one transfer otherwise."""
    if not a.flags.writeable:  # a message buffer: viewed, never written (torch would warn)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(a)
    else:
        t = torch.from_numpy(a)
    return t.to(device, non_blocking=True)


def resize(x: torch.Tensor, size: tuple[int, int], dense: bool) -> torch.Tensor:
    """Resize a (C, H, W) or (B, C, H, W) float tensor: bilinear for dense inputs, nearest for
    sparse ones (:func:`anyseg_model.preprocess.is_dense`). The one resampling rule of training
    and the node."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    batch = x if x.ndim == 4 else x[None]
    if dense:
        batch = F.interpolate(batch, size=size, mode="bilinear", align_corners=False)
    else:
        batch = F.interpolate(batch, size=size, mode="nearest")
    return batch if x.ndim == 4 else batch[0]


@lru_cache(maxsize=64)
def nearest_index(src: int, dst: int, device: str) -> torch.Tensor:
    """The source rows (or columns) nearest resampling (:func:`resize`) reads for ``dst``
    outputs: asked of F.interpolate itself, so picking them first resamples exactly alike."""
    ramp = torch.arange(src, dtype=torch.float32).view(1, 1, src, 1)
    picked = F.interpolate(ramp, size=(dst, 1), mode="nearest").view(dst)
    return picked.to(torch.int64).to(device)


@lru_cache(maxsize=64)
def _picked(shape: tuple[int, ...], size: tuple[int, int], device: str) -> torch.Tensor:
    """The flat indices nearest resampling reads from a contiguous (H, W[, C]) image."""
    rows = nearest_index(shape[0], size[0], device).view(-1, 1)
    flat = rows * shape[1] + nearest_index(shape[1], size[1], device).view(1, -1)
    if len(shape) == 3:
        flat = flat[..., None] * shape[2] + torch.arange(shape[2], device=device)
    return flat.reshape(-1)


def pick(t: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Nearest resampling of an (H, W[, C]) raw image before a pointwise encoding: one gather
    of the pixels it reads."""
    if size is None or tuple(t.shape[:2]) == tuple(size):
        return t
    t = t.contiguous()  # a view already, unless the rows are padded
    index = _picked(tuple(t.shape), tuple(size), str(t.device))
    flat = t.view(-1)
    if t.dtype == torch.uint16:  # torch has no uint16 gather: the same bits as int16
        flat = flat.view(torch.int16)
    return flat.index_select(0, index).view(t.dtype).view(*size, *t.shape[2:])


@lru_cache(maxsize=64)
def bilinear_taps(src: int, dst: int, device: str) -> tuple[torch.Tensor, ...]:
    """(i0, i1, w0, w1) of bilinear resampling (align_corners=False) from ``src`` to ``dst``
    samples, computed as F.interpolate computes them (float32): output k is
    w0[k] * x[i0[k]] + w1[k] * x[i1[k]]."""
    scale = torch.tensor(src, dtype=torch.float64) / dst
    real = (scale * (torch.arange(dst, dtype=torch.float64) + 0.5) - 0.5).clamp_(min=0.0)
    i0 = real.floor().to(torch.int64).clamp_(max=src - 1)
    w1 = (real - i0).clamp_(0.0, 1.0).to(torch.float32)
    i1 = torch.where(i0 < src - 1, i0 + 1, i0)
    return tuple(t.to(device) for t in (i0, i1, 1.0 - w1, w1))


def _taps(src: int, dst: int, device: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(index, weight) of the one or two source samples each output weighs: the second only
    where one weighs anything (an odd integer downscale, e.g. 640 -> 128, samples the source
    exactly: weight 1 and 0)."""
    i0, i1, w0, w1 = bilinear_taps(src, dst, device)
    return [(i0, w0), (i1, w1)] if bool(w1.any()) else [(i0, w0)]


@lru_cache(maxsize=64)
def _bilinear_gather(shape: tuple[int, int, int], size: tuple[int, int], device: str):
    """For a contiguous (H, W, C) image: the flat indices of the taps of every output, in
    (row tap, column tap, C, h, w) order, and the row (h, 1) / column (1, w) weights."""
    (src_h, src_w, c), dev = shape, str(device)
    rows, cols = _taps(src_h, size[0], dev), _taps(src_w, size[1], dev)
    ch = torch.arange(c, device=dev).view(c, 1, 1)
    index = [
        (r.view(1, -1, 1) * src_w + col.view(1, 1, -1)) * c + ch for r, _ in rows for col, _ in cols
    ]
    a = [w.view(-1, 1) for _, w in rows]
    b = [w.view(1, -1) for _, w in cols]
    return torch.stack(index).reshape(-1), a, b


def bilinear_uint8(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resampling of a uint8 (H, W, C) image to float32 (C, h, w), reading only the
    pixels it weighs (one gather of the taps of every output) instead of converting the whole
    image first; the values of F.interpolate on the float image, within float rounding (the
    very values where the taps are exact source samples)."""
    t = t.contiguous()  # a view already, unless the rows are padded
    index, a, b = _bilinear_gather(tuple(t.shape), tuple(size), str(t.device))
    p = t.view(-1).index_select(0, index).to(torch.float32)
    p = p.view(len(a), len(b), t.shape[2], *size)

    def row(i: int) -> torch.Tensor:  # b0 * p_i0 + b1 * p_i1
        acc = b[0] * p[i, 0]
        for j in range(1, len(b)):
            acc = acc + b[j] * p[i, j]
        return acc

    out = a[0] * row(0)
    for i in range(1, len(a)):
        out = out + a[i] * row(i)
    return out
