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
