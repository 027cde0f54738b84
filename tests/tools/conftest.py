"""A short synthetic recording shared by the replay, live-evaluation and bag-training tests."""

import shutil

import pytest
import torch

from anyseg_model import create_model, save_checkpoint
from anyseg_ros.core.topics import LABELS_TOPIC, normalize
from anyseg_sim import SyntheticWorld, WorldConfig, write_bag
from anyseg_sim.files import write_calibration
from anyseg_tools.bag import BagWriter, read_bag


@pytest.fixture(scope="session")
def recording(tmp_path_factory):
    """3 s of the synthetic world at 96x64 (bag + calibration.yaml) and an untrained checkpoint."""
    root = tmp_path_factory.mktemp("recording")
    world = SyntheticWorld(WorldConfig(width=96, height=64, seed=5))
    write_bag(root / "bag", world, frames=60)
    write_calibration(root / "calibration.yaml", world)
    torch.manual_seed(0)
    save_checkpoint(
        create_model("anyseg_tiny", num_classes=25), root / "tiny.pt", input_size=(64, 96)
    )
    return root


@pytest.fixture(scope="session")
def unlabelled(recording, tmp_path_factory):
    """The same recording without its ground-truth topic (a robot's own drive)."""
    root = tmp_path_factory.mktemp("unlabelled")
    with BagWriter(root / "bag") as w:
        for r in read_bag(recording / "bag").records:
            if r.topic != normalize(LABELS_TOPIC):
                w.write_raw(r)
    shutil.copy(recording / "calibration.yaml", root / "calibration.yaml")
    return root
