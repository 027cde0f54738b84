"""anyseg_model: the anymodal segmentor (PyTorch + numpy only; no ROS).

Names are imported on first use, so the torch-free parts (``anyseg_model.modalities``,
``classes``, ``representations``) load without paying for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CheckpointError": ".checkpoint",
    "load_checkpoint": ".checkpoint",
    "save_checkpoint": ".checkpoint",
    "Prediction": ".inference",
    "Segmentor": ".inference",
    "MODALITIES": ".modalities",
    "Modality": ".modalities",
    "all_subsets": ".modalities",
    "parse_subset": ".modalities",
    "subset_name": ".modalities",
    "AnySegModel": ".model",
    "Features": ".model",
    "create_model": ".model",
    "list_models": ".model",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
