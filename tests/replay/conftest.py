"""A short synthetic recording shared by the replay, live-evaluation and bag-training tests."""

import shutil

import pytest
import torch
from rosbags.rosbag2 import StoragePlugin, Writer

from anyseg_model import create_model, save_checkpoint
from anyseg_ros.bag import read_bag, typestore
from training.data.synthetic import SyntheticWorld, WorldConfig, write_bag
from training.data.synthetic.files import write_calibration


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
    conns = {}
    with Writer(root / "bag", version=9, storage_plugin=StoragePlugin.MCAP) as w:
        for r in read_bag(recording / "bag").records:
            if r.topic != "/ground_truth/labels":
                if r.topic not in conns:
                    conns[r.topic] = w.add_connection(r.topic, r.msgtype, typestore=typestore())
                w.write(conns[r.topic], r.log_ns, r.raw)
    shutil.copy(recording / "calibration.yaml", root / "calibration.yaml")
    return root
