"""anyseg_model: the anymodal segmentor (PyTorch + numpy only; no ROS)."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .inference import Prediction, Segmentor
from .modalities import MODALITIES, Modality, all_subsets, parse_subset, subset_name
from .model import AnySegModel, Features, create_model, list_models

__all__ = [
    "MODALITIES", "AnySegModel", "CheckpointError", "Features", "Modality", "Prediction",
    "Segmentor", "all_subsets", "create_model", "list_models", "load_checkpoint",
    "parse_subset", "save_checkpoint", "subset_name",
]  # fmt: skip
