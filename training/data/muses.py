"""MUSES (Broedermann et al., ECCV 2024): frame camera, event camera and LiDAR projected into the
camera image; 19 Cityscapes classes (docs/method.md section 8).

Layout (one folder per modality, each ``<split>/<weather>/<time>/``):

    <root>/frame_camera/<split>/<weather>/<time>/<name>_frame_camera.png
    <root>/gt_semantic/<split>/<weather>/<time>/<name>_gt_labelTrainIds.png
    <root>/event_camera/<split>/<weather>/<time>/<name>_event_camera.png   (projected, rendered)
    <root>/lidar/<split>/<weather>/<time>/<name>_lidar.png                 (projected, rendered)

The projected event/LiDAR images may also live under ``<root>/projected_to_rgb/<folder>/...``
(the MUSES SDK's output folder); ``.png`` and uint8 ``.npz`` arrays are both read. Labels are
train ids already (0..18, 255 ignore). RGB uses the ``rgb`` representation, the projections the
``image`` pass-through. The MUSES modalities map onto the project's names rgb, event, lidar.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anyseg_model.classes import CITYSCAPES_CLASSES, CITYSCAPES_PALETTE
from anyseg_model.modalities import canonical
from anyseg_model.representations import Representation

from .deliver import read_png
from .registry import register_dataset

MODALITIES = ("rgb", "event", "lidar")
WEATHERS = ("clear", "fog", "rain", "snow")
TIMES = ("day", "night")
SPLITS = ("train", "val", "test")
_FOLDER = {
    "rgb": ("frame_camera", "frame_camera"),
    "event": ("event_camera", "event_camera"),
    "lidar": ("lidar", "lidar"),
}


def _read_any(path_png: Path) -> np.ndarray:
    """A PNG, or the same name as a uint8 ``.npz`` (first array)."""
    if path_png.is_file():
        return read_png(path_png)
    npz = path_png.with_suffix(".npz")
    if npz.is_file():
        with np.load(npz) as z:
            a = z[z.files[0]]
        if a.dtype != np.uint8:
            raise ValueError(
                f"{npz}: projected arrays must be uint8 images, got {a.dtype}; render them first"
            )
        return a
    raise FileNotFoundError(f"MUSES file missing: {path_png} (or .npz)")


class MusesDataset:
    """Samples ``{"arrays": {modality: uint8 image}, "label": uint8 (H, W), "name": str}``."""

    classes = CITYSCAPES_CLASSES
    palette = CITYSCAPES_PALETTE

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        modalities: Sequence[str] = MODALITIES,
        *,
        weathers: Sequence[str] = (),
        times: Sequence[str] = (),
        max_samples: int = 0,
    ) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"unknown MUSES split {split!r}; valid: {list(SPLITS)}")
        self.modalities = canonical(modalities)
        extra = sorted(set(self.modalities) - set(MODALITIES))
        if extra:
            raise ValueError(f"MUSES has no {extra}; its modalities are {list(MODALITIES)}")
        for what, got, valid in (("weather", weathers, WEATHERS), ("time", times, TIMES)):
            bad = [v for v in got if v not in valid]
            if bad:
                raise ValueError(f"unknown MUSES {what} {bad}; valid: {list(valid)}")
        files = sorted(self.root.glob(f"frame_camera/{split}/*/*/*_frame_camera.png"))
        files = [
            f
            for f in files
            if (not weathers or f.parts[-3] in weathers) and (not times or f.parts[-2] in times)
        ]
        if not files:
            raise FileNotFoundError(
                f"no MUSES images under {self.root}/frame_camera/{split}/<weather>/<time>/"
            )
        self.split = split
        self.files = files[:max_samples] if max_samples else files

    def representations(self) -> dict[str, Representation]:
        return {
            m: Representation("rgb") if m == "rgb" else Representation("image")
            for m in self.modalities
        }

    def path(self, rgb: Path, modality: str) -> Path:
        """Where a modality (or ``label``) of the frame ``rgb`` lives."""
        rel = rgb.relative_to(self.root / "frame_camera")  # <split>/<weather>/<time>/<file>
        stem = rgb.name.removesuffix("_frame_camera.png")
        if modality == "label":
            return self.root / "gt_semantic" / rel.parent / f"{stem}_gt_labelTrainIds.png"
        folder, token = _FOLDER[modality]
        direct = self.root / folder / rel.parent / f"{stem}_{token}.png"
        if direct.is_file() or direct.with_suffix(".npz").is_file():
            return direct
        return self.root / "projected_to_rgb" / folder / rel.parent / f"{stem}_{token}.png"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rgb = self.files[i]
        lab = read_png(self.path(rgb, "label"))
        label = (lab[..., 0] if lab.ndim == 3 else lab).astype(np.uint8)
        label[(label >= len(self.classes)) & (label != 255)] = 255  # anything else is unlabelled
        arrays = {m: _read_any(self.path(rgb, m)) for m in self.modalities}
        return {"arrays": arrays, "label": label, "name": str(rgb.relative_to(self.root))}


@register_dataset("muses")
def _from_config(path: str | None, split: str, cfg: Any) -> MusesDataset:
    if not path:
        raise ValueError("the muses source needs a path: --data muses:PATH")
    mods = [m for m in cfg.model.modalities if m in MODALITIES]
    return MusesDataset(path, split, mods, max_samples=cfg.data.max_samples)
