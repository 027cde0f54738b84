"""``--data bag:PATH``: training samples cut from recorded rosbag2 bags by the node's own code.

PATH is a bag or a folder of bags. Every frame set the node would have formed from a bag (its
decode, synchroniser and LiDAR projection set-up, :class:`anyseg_tools.walk.BagWalk`) becomes
one sample with the modalities that frame really had. With a labels topic
(``ground_truth/labels``) the sample's label is the ground truth nearest in stamp; without one
every pixel is ignored (255), so L_sup is zero and a student learns from the teacher alone
(MAD / UMD / CMD): a robot's own unlabelled recordings can adapt a student.

Split: the first 80% of each bag's frame sets train, the last 20% validate ('val' and 'test'),
so the two never share a moment of the drive. Inputs are read as the bag recorded them (raw or
compressed images, compressedDepth, event frames or event packets: anyseg_tools.walk.bag_inputs).
LiDAR needs the extrinsic: calibration.yaml in or beside the bag (as the synthetic world writes
it for raw recordings), else the bag's /tf_static. A bag is held in memory while used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from anyseg_model.classes import DELIVER_CLASSES, DELIVER_PALETTE, IGNORE_INDEX
from anyseg_model.preprocess import reference_size
from anyseg_model.representations import DEFAULT_REPRESENTATIONS, Representation
from anyseg_ros.core.settings import InputSettings, SyncSettings
from anyseg_ros.core.topics import (
    INPUT_TOPICS,
    LABELS_TOPIC,
    TF_STATIC_TOPIC,
    modality_of,
    normalize,
)
from anyseg_tools.bag import find_calibration, nearest_stamp, read_bag
from anyseg_tools.walk import BagWalk, bag_inputs

from .registry import register_dataset

TRAIN_FRACTION = 0.8
LABEL_TOLERANCE_NS = 30_000_000  # a frame anchored off the camera pairs with the nearest label


def bag_paths(path: str | Path) -> list[Path]:
    """A bag (folder with metadata.yaml, or an .mcap/.db3 file), or every bag under a folder."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"bag data {str(path)!r} does not exist")
    if path.is_file() or (path / "metadata.yaml").is_file():
        return [path]
    bags = sorted(p.parent for p in path.rglob("metadata.yaml"))
    if not bags:
        raise ValueError(f"no rosbag2 bag (folder with metadata.yaml) under {str(path)!r}")
    return bags


class BagDataset:
    """Frame sets of one or more bags as raw samples (see training/data/registry.py)."""

    classes = tuple(DELIVER_CLASSES)
    palette = tuple(DELIVER_PALETTE)

    def __init__(
        self,
        path: str | Path,
        split: str,
        modalities: tuple[str, ...],
        labels_topic: str = LABELS_TOPIC,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; valid: train, val, test")
        self.samples: list[dict[str, Any]] = []
        self.labelled = 0
        found: set[str] = set()
        for bag_path in bag_paths(path):
            bag = read_bag(bag_path)
            if bag.error:
                print(f"bag data: {bag.error}; using the readable part")
            topics = bag.topics()
            present = {modality_of(t) for t in topics}
            mods = [m for m in modalities if m in present]
            calibration = find_calibration(bag_path)
            if "lidar" in mods and calibration is None and normalize(TF_STATIC_TOPIC) not in topics:
                raise ValueError(
                    f"{bag_path}: LiDAR needs calibration.yaml (lidar_extrinsic) "
                    "in or beside the bag, or /tf_static in it"
                )
            if not mods:
                continue
            # The node's own defaults (slop, wait, timeouts, anchor priority) for the bag's sensors.
            values = bag_inputs(
                topics,
                {"modalities": mods, "calibration_file": str(calibration) if calibration else ""},
            )
            sync = SyncSettings.from_parameters(values)
            inputs = InputSettings.from_parameters(values, read_yaml=_read_yaml)
            walk = BagWalk(bag, sync, inputs, labels_topic=labels_topic)
            frames = list(walk)
            stamps = np.array(sorted(walk.ground_truth), dtype=np.int64)
            cut = int(len(frames) * TRAIN_FRACTION)
            for fs, arrays in frames[:cut] if split == "train" else frames[cut:]:
                label_stamp = nearest_stamp(stamps, fs.stamp_ns, LABEL_TOLERANCE_NS)
                size = reference_size(arrays)
                label = walk.ground_truth.get(label_stamp) if label_stamp is not None else None
                if label is None or label.shape != size:
                    label = np.full(size, IGNORE_INDEX, np.uint8)
                else:
                    self.labelled += 1
                self.samples.append(
                    {
                        "arrays": arrays,
                        "label": label,
                        "available": [m in arrays for m in modalities],
                    }
                )
            found.update(mods)
        if not self.samples:
            raise ValueError(
                f"no frame sets of the modalities {list(modalities)} in {str(path)!r} ({split})"
            )
        self.modalities = tuple(m for m in modalities if m in found)
        for s in self.samples:  # the mask runs over the data set's modalities
            s["available"] = [m in s["arrays"] for m in self.modalities]

    def representations(self) -> dict[str, Representation]:
        """Raw sensor data: the node's representations."""
        return {m: Representation(DEFAULT_REPRESENTATIONS[m]) for m in self.modalities}

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.samples[i]


def _read_yaml(path: str) -> Any:
    return yaml.safe_load(Path(path).read_text())


@register_dataset("bag")
def _from_config(path: str | None, split: str, cfg: Any) -> BagDataset:
    if not path:
        raise ValueError("bag data needs a path: --data bag:PATH (a bag or a folder of bags)")
    mods = tuple(m for m in cfg.model.modalities if m in INPUT_TOPICS)
    return BagDataset(path, split, mods)
