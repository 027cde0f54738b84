"""DELIVER (Zhang et al., CVPR 2023) in its exact on-disk layout (docs/method.md section 8).

    <root>/{img,depth,hha,event,lidar,semantic}/{cloud,fog,night,rain,sun}/{train,val,test}/
        <scene>/<id>_{rgb,depth,event,lidar,semantic}_front.png

Files are found from the RGB images; every other path is derived from the RGB path exactly as
the reference loader does (``/img`` -> ``/hha`` or ``/depth``, ``_rgb`` -> ``_depth``, ...).
Labels: channel 0 of the semantic PNG; 255 -> 0, then minus one in uint8, so ids 1..25 become
0..24 and 0/255 become 255 (ignore).

Two input forms:
- ``png``: the data set's renderings, passed through with the ``image`` representation (depth
  from ``hha/`` or ``depth/`` as chosen). This is the reference protocol.
- ``raw``: the raw sensor arrays of the frame, encoded with the node's representations (rgb,
  depth_metric, event_frame, lidar_projected), so a model trained here runs on live sensors
  unchanged. The synthetic world's DELIVER writer stores them as
  ``<root>/raw/<cond>/<split>/<scene>/<id>_raw_front.npz`` (same path rule: ``/img`` ->
  ``/raw``, ``_rgb`` -> ``_raw``) with the members ``rgb`` uint8, ``depth`` float32 metres,
  ``event`` uint8 (128 + net count), ``lidar`` (N, 4) points, ``lidar_K``, ``lidar_D``,
  ``lidar_extrinsic`` (lidar -> camera optical) and ``image_size_hw``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from anyseg_model.classes import DELIVER_CLASSES, DELIVER_PALETTE
from anyseg_model.modalities import canonical
from anyseg_model.representations import DEFAULT_REPRESENTATIONS, Representation
from anyseg_sim.files import raw_inputs

from ..config import DELIVER_FAILURES
from .registry import register_dataset

CONDITIONS = ("cloud", "fog", "night", "rain", "sun")
FAILURES = DELIVER_FAILURES
SPLITS = ("train", "val", "test")
# Front-view frames per split of the released data set (3983 + 2005 + 1897 = 7885, all five
# conditions and the failure scenes together). Anything else is a partial download or
# extraction, and training on it would silently be a different experiment.
SPLIT_SIZES = {"train": 3983, "val": 2005, "test": 1897}

# Modality -> (folder, file-name token) relative to the RGB image's.
_PNG = {"rgb": ("img", "rgb"), "event": ("event", "event"), "lidar": ("lidar", "lidar")}


def _swap(rgb_path: str | Path, folder: str, token: str, suffix: str = ".png") -> Path:
    """``<root>/img/<cond>/<split>/<scene>/<id>_rgb_front.png`` -> same place under ``folder``
    with ``_rgb`` replaced by ``_<token>`` (only the layout's own folder is touched, so a root
    that itself contains ``img`` is safe)."""
    p = Path(rgb_path)
    if len(p.parts) < 5 or p.parts[-5] != "img" or "_rgb" not in p.name:
        raise ValueError(
            f"not a DELIVER RGB path (<root>/img/<cond>/<split>/<scene>/<id>_rgb_front.png): {p}"
        )
    name = p.name.replace("_rgb", f"_{token}", 1).removesuffix(".png") + suffix
    return p.parents[4] / folder / p.parts[-4] / p.parts[-3] / p.parts[-2] / name


def derive_path(rgb_path: str | Path, modality: str, depth_png: str = "hha") -> Path:
    """The reference rule: ``/img`` -> the modality's folder, ``_rgb`` -> its file token.
    ``modality`` is one of rgb, depth (from ``hha/`` or ``depth/``), event, lidar, label."""
    if modality == "rgb":
        return Path(rgb_path)
    if modality == "depth":
        return _swap(rgb_path, depth_png, "depth")
    if modality == "label":
        return _swap(rgb_path, "semantic", "semantic")
    if modality not in _PNG:
        raise ValueError(
            f"unknown DELIVER modality {modality!r}; valid: rgb, depth, event, lidar, label"
        )
    return _swap(rgb_path, *_PNG[modality])


def raw_path(rgb_path: str | Path) -> Path:
    """The frame's raw arrays: ``<root>/raw/<cond>/<split>/<scene>/<id>_raw_front.npz``."""
    return _swap(rgb_path, "raw", "raw", ".npz")


def decode_label(semantic: np.ndarray) -> np.ndarray:
    """DELIVER label rule on a semantic PNG array -> uint8 ids 0..24, 255 ignore."""
    lab = semantic[..., 0] if semantic.ndim == 3 else semantic
    lab = lab.astype(np.uint8).copy()
    lab[lab == 255] = 0
    return lab - np.uint8(1)  # uint8 wrap-around: 0 -> 255 (ignore)


def read_png(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) or (H, W) array of a PNG; 4 channels lose alpha (reference); 16-bit
    images keep their top byte."""
    if not path.is_file():
        raise FileNotFoundError(f"DELIVER file missing: {path}")
    with Image.open(path) as im:
        a = np.asarray(im)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.dtype != np.uint8:
        # 16-bit PNGs (PIL gives uint16 or int32): keep the top byte, a FIXED mapping, so one
        # value means the same in every frame (scaling each image by its own maximum, as this
        # did before, made the same depth look different from frame to frame).
        a = (np.clip(a.astype(np.int64), 0, 65535) >> 8).astype(np.uint8)
    return a


def _case_of(path: Path) -> tuple[str, str | None]:
    """(condition, failure) of a file from its condition folder and scene name."""
    cond = path.parts[-4]
    scene = path.parts[-2]
    failure = next((f for f in FAILURES if scene.endswith(f"_{f}") or f"_{f}" in scene), None)
    return cond, failure


class DeliverDataset:
    """Samples ``{"arrays": {modality: raw}, "label": uint8 (H, W), "name": str}``.

    conditions: keep only these condition folders ([] = all). failures: ``keep`` (all scenes),
    ``drop`` (no sensor-failure scenes), ``only`` (only them), or a failure name.
    representation: ``png`` or ``raw`` (see the module docstring). The split must hold exactly
    :data:`SPLIT_SIZES` frames (before the filters) unless ``allow_partial`` (subsets, fakes).
    """

    classes = DELIVER_CLASSES
    palette = DELIVER_PALETTE

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        modalities: Sequence[str] = ("rgb", "depth", "event", "lidar"),
        *,
        representation: str = "png",
        depth_png: str = "hha",
        conditions: Sequence[str] = (),
        failures: str = "keep",
        max_samples: int = 0,
        allow_partial: bool = False,
    ) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ValueError(f"unknown DELIVER split {split!r}; valid: {list(SPLITS)}")
        if representation not in ("png", "raw"):
            raise ValueError(f"representation must be 'png' or 'raw', got {representation!r}")
        if depth_png not in ("hha", "depth"):
            raise ValueError(f"depth_png must be 'hha' or 'depth', got {depth_png!r}")
        bad = [c for c in conditions if c not in CONDITIONS]
        if bad:
            raise ValueError(f"unknown DELIVER condition {bad}; valid: {list(CONDITIONS)}")
        if failures not in ("keep", "drop", "only", *FAILURES):
            raise ValueError(
                f"failures must be keep, drop, only or one of {list(FAILURES)}; got {failures!r}"
            )
        self.modalities = canonical(modalities)
        self.representation, self.depth_png = representation, depth_png
        files = sorted(self.root.glob(f"img/*/{split}/*/*_rgb_front.png"))
        if not files:
            raise FileNotFoundError(
                f"no DELIVER images under {self.root}/img/*/{split}/*/*_rgb_front.png"
            )
        if len(files) != SPLIT_SIZES[split] and not allow_partial:
            raise ValueError(
                f"DELIVER {split} split under {self.root}: {len(files)} front-view frames, the "
                f"released split has {SPLIT_SIZES[split]} (partial download or extraction?); "
                "set data.allow_partial=true to train on what is there"
            )
        keep = []
        for f in files:
            cond, failure = _case_of(f)
            if conditions and cond not in conditions:
                continue
            if (failures == "drop" and failure) or (failures == "only" and not failure):
                continue
            if failures in FAILURES and failure != failures:
                continue
            keep.append(f)
        if not keep:
            raise FileNotFoundError(
                f"no DELIVER {split} images left after filters conditions={list(conditions)} "
                f"failures={failures!r} under {self.root}"
            )
        self.files = keep[:max_samples] if max_samples else keep

    def representations(self) -> dict[str, Representation]:
        """What turns this data set's arrays into network inputs (stored in checkpoints)."""
        if self.representation == "raw":
            return {m: Representation(DEFAULT_REPRESENTATIONS[m]) for m in self.modalities}
        return {
            m: Representation("rgb") if m == "rgb" else Representation("image")
            for m in self.modalities
        }

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> dict[str, Any]:
        rgb = self.files[i]
        label = decode_label(read_png(derive_path(rgb, "label")))
        if self.representation == "raw":
            arrays = load_raw(raw_path(rgb), self.modalities)
        else:
            arrays = {m: read_png(derive_path(rgb, m, self.depth_png)) for m in self.modalities}
        return {"arrays": arrays, "label": label, "name": str(rgb.relative_to(self.root))}


def load_raw(path: Path, modalities: Sequence[str]) -> dict[str, Any]:
    """Raw arrays of one frame from its ``_raw_front.npz`` (members: module docstring)."""
    if not path.is_file():
        raise FileNotFoundError(f"raw arrays missing: {path} (use data.representation=png)")
    with np.load(path) as z:
        return raw_inputs(z, modalities)


@register_dataset("deliver")
def _from_config(path: str | None, split: str, cfg: Any) -> DeliverDataset:
    if not path:
        raise ValueError("the deliver source needs a path: --data deliver:PATH")
    d = cfg.data
    return DeliverDataset(
        path,
        split,
        cfg.model.modalities,
        representation=d.representation,
        depth_png=d.depth_png,
        conditions=d.conditions,
        failures=d.failures,
        max_samples=d.max_samples,
        allow_partial=d.allow_partial,
    )
