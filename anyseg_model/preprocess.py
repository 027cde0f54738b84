"""Raw arrays per modality -> the model's input tensors. The node and training both use this.

Each modality's representation turns its raw array into a (3, H, W) float image; all of them are
then brought to one size (the reference image's, or the network's ``input_size``), because the
shared encoder sees the modalities of a sample as one folded batch. The encoding runs in torch
on the model's device (:mod:`anyseg_model.encoding`): training's data workers call
:func:`encode` (CPU, numpy out), the node :func:`to_batch` (raw arrays uploaded once, encoded
and resized on the device).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from .encoding import encode_tensor
from .modalities import canonical
from .representations import LidarScan, Representation
from .tensors import resize

__all__ = ["encode", "encode_tensors", "is_dense", "reference_size", "resize", "to_batch"]


def is_dense(modality: str, representation: Representation | str | None = None) -> bool:
    """Whether an input resamples as a dense image (bilinear) or keeps its samples (nearest).

    RGB is dense. Depth is dense only as a pre-rendered PNG (DELIVER's HHA or depth image); metric
    depth has holes, and averaging a hole with a hit invents geometry. Events and projected LiDAR
    are sparse whatever their encoding. Training and the node resize by this one rule.
    """
    name = representation.name if isinstance(representation, Representation) else representation
    return modality == "rgb" or (modality == "depth" and name == "image")


def reference_size(arrays: Mapping[str, Any]) -> tuple[int, int]:
    """(H, W) of the first image-like input in canonical order; a LiDAR scan gives its camera's."""
    if not arrays:
        raise ValueError("empty input: give at least one modality")
    for m in canonical(arrays):
        a = arrays[m]
        if isinstance(a, LidarScan):
            w, h = a.image_size
            return int(h), int(w)
        if isinstance(a, np.ndarray) and a.ndim >= 2:
            return int(a.shape[0]), int(a.shape[1])
    raise ValueError("no image-like input to take a size from")


def _checked(arrays: Mapping[str, Any], representations: Mapping[str, Representation]) -> None:
    if not arrays:
        raise ValueError(f"empty input: give at least one of {sorted(representations)}")
    unknown = sorted(set(arrays) - set(representations))
    if unknown:
        raise ValueError(f"modality {unknown} not known here; known: {sorted(representations)}")


def encode(
    arrays: Mapping[str, Any], representations: Mapping[str, Representation]
) -> dict[str, np.ndarray]:
    """Apply each modality's representation: raw -> float32 (3, H, W) (torch on the CPU)."""
    return {m: x.numpy() for m, x in encode_tensors(arrays, representations).items()}


def encode_tensors(
    arrays: Mapping[str, Any],
    representations: Mapping[str, Representation],
    size: tuple[int, int] | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Raw arrays -> ``{modality: (3, H, W)}`` float32 on ``device``, each at ``size`` when given
    (the same values as :func:`encode` then :func:`resize`, within float rounding)."""
    _checked(arrays, representations)
    return {
        m: encode_tensor(
            representations[m], arrays[m], device, size, is_dense(m, representations[m])
        )
        for m in canonical(arrays)
    }


def to_batch(
    arrays: Mapping[str, Any],
    representations: Mapping[str, Representation],
    size: tuple[int, int] | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """Raw arrays of one sample -> ``{modality: (1, 3, H, W)}`` on ``device`` at ``size``
    (default: the reference image's size)."""
    size = size or reference_size(arrays)
    return {m: x[None] for m, x in encode_tensors(arrays, representations, size, device).items()}
