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


def pick(t: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """Nearest resampling of an (H, W[, C]) raw image before a pointwise encoding."""
    if size is None or tuple(t.shape[:2]) == tuple(size):
        return t
    dev = str(t.device)
    rows = nearest_index(t.shape[0], size[0], dev)
    cols = nearest_index(t.shape[1], size[1], dev)
    return t.index_select(0, rows).index_select(1, cols)


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


def bilinear_uint8(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resampling of a uint8 (H, W, C) image to float32 (C, h, w), reading only the
    pixels it weighs (four per output) instead of converting the whole image first; the values
    of F.interpolate on the float image, within float rounding."""
    dev = str(t.device)
    r0, r1, a0, a1 = bilinear_taps(t.shape[0], size[0], dev)
    c0, c1, b0, b1 = bilinear_taps(t.shape[1], size[1], dev)
    rows = [t.index_select(0, r) for r in (r0, r1)]  # (h, W, C) each
    taps = [[_planar_small(r.index_select(1, c)) for c in (c0, c1)] for r in rows]  # (C, h, w)
    a0, a1, b0, b1 = a0.view(-1, 1), a1.view(-1, 1), b0.view(1, -1), b1.view(1, -1)
    return a0 * (b0 * taps[0][0] + b1 * taps[0][1]) + a1 * (b0 * taps[1][0] + b1 * taps[1][1])


def _planar_small(t: torch.Tensor) -> torch.Tensor:
    """uint8 (h, w, C) -> contiguous float32 (C, h, w)."""
    return torch.empty((t.shape[2], *t.shape[:2]), device=t.device).copy_(t.permute(2, 0, 1))
