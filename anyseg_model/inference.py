"""Segmentor: checkpoint path in, labels out. What the node and the evaluators call."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint
from .modalities import canonical
from .preprocess import reference_size, to_batch
from .representations import LidarScan


@dataclass(frozen=True)
class Prediction:
    labels: np.ndarray  # (H, W) uint8 class ids at the reference input's size
    confidence: np.ndarray  # (H, W) float32 softmax probability of the chosen class
    modalities: tuple[str, ...]  # the modalities that went in, canonical order


def resolve_device(device: str) -> torch.device:
    """'auto' -> the first CUDA device when there is one, else CPU; otherwise as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device {device!r} not understood; use auto, cpu or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here")
    return dev


class Segmentor:
    """A loaded checkpoint ready to predict on raw sensor arrays (any non-empty subset)."""

    def __init__(self, checkpoint, device: str = "auto") -> None:
        self.device = resolve_device(device)
        self.model = checkpoint.model.to(self.device).eval()
        self.classes = checkpoint.classes
        self.palette = checkpoint.palette
        self.representations = checkpoint.representations
        self.input_size = checkpoint.input_size
        self.meta = checkpoint.meta
        # Half precision on CUDA (autocast keeps norms and softmax in float32).
        self.dtype = torch.float16 if self.device.type == "cuda" else None

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> Segmentor:
        """Load ``path`` (see :mod:`anyseg_model.checkpoint`) onto ``device`` (auto/cpu/cuda:N)."""
        return cls(load_checkpoint(path), device)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.model.modalities

    @torch.inference_mode()
    def logits(self, arrays: Mapping[str, Any]) -> torch.Tensor:
        """(1, K, H, W) float32 logits at the reference input's size."""
        out_size = reference_size(arrays)
        batch = to_batch(arrays, self.representations, self.input_size or out_size, self.device)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            logits = self.model.forward_head(self.model.forward_features(batch).fused)
        return F.interpolate(logits.float(), size=out_size, mode="bilinear", align_corners=False)

    def predict(self, arrays: Mapping[str, Any]) -> Prediction:
        """Labels and confidence for one frame set: ``{modality: raw array or LidarScan}``."""
        prob = self.logits(arrays)[0].softmax(0)
        conf, labels = prob.max(0)
        return Prediction(
            labels.to(torch.uint8).cpu().numpy(), conf.cpu().numpy(), canonical(arrays)
        )

    def warmup(self, size: tuple[int, int] | None = None) -> None:
        """One forward on every modality so the first real frame pays no set-up cost."""
        h, w = self.input_size or size or (64, 64)
        arrays: dict[str, Any] = {}
        for m, rep in self.representations.items():
            if rep.name == "lidar_projected":
                k = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], float)
                arrays[m] = LidarScan(np.array([[0.0, 0.0, 5.0, 0.5]]), k, np.eye(4), (w, h))
            elif rep.name == "depth_metric":
                arrays[m] = np.ones((h, w), np.float32)
            elif rep.name == "event_frame":
                arrays[m] = np.full((h, w), 128, np.uint8)
            else:
                arrays[m] = np.zeros((h, w, 3), np.uint8)
        self.predict(arrays)
