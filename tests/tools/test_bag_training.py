"""Training on recorded bags: samples cut by the node's own decode + sync, and a label-free
student that learns from the teacher alone."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from anyseg_model import MODALITIES, create_model
from anyseg_ros.core.settings import InputSettings, SyncSettings
from anyseg_tools.bag import read_bag
from anyseg_tools.walk import BagWalk
from training.config import LossConfig
from training.data.registry import EncodedDataset
from training.data.rosbag import BagDataset
from training.tasks import StudentTask, teacher_outputs


def test_samples_are_the_nodes_frame_sets(recording):
    train = BagDataset(recording / "bag", "train", MODALITIES)
    val = BagDataset(recording / "bag", "val", MODALITIES)
    assert train.modalities == MODALITIES and train.labelled == len(train) > 0
    values = {"calibration_file": str(recording / "calibration.yaml")}
    inputs = InputSettings.from_parameters(
        values, read_yaml=lambda p: yaml.safe_load(Path(p).read_text())
    )
    walk = list(BagWalk(read_bag(recording / "bag"), SyncSettings.from_parameters(values), inputs))
    assert len(train) + len(val) == len(walk)
    for sample, (fs, arrays) in zip(train.samples, walk, strict=False):
        assert set(sample["arrays"]) == set(arrays) == set(fs.modalities)
        assert sample["available"] == [m in fs.modalities for m in MODALITIES]
        assert sample["label"].shape == (64, 96) and (sample["label"] != 255).any()
    # Not every frame has every sensor (they run at their own rates): the masks say which.
    assert len({tuple(s["available"]) for s in train.samples}) > 1


def test_label_free_distillation_moves_the_student_toward_the_teacher(unlabelled):
    raw = BagDataset(unlabelled / "bag", "train", MODALITIES)
    assert raw.labelled == 0 and all((s["label"] == 255).all() for s in raw.samples)
    data = EncodedDataset(raw)
    batch = [data[i] for i in range(6)]
    inputs = {m: torch.stack([b["inputs"][m] for b in batch]) for m in MODALITIES}
    available = torch.stack([b["available"] for b in batch])
    label = torch.stack([b["label"] for b in batch])
    torch.manual_seed(0)
    teacher = create_model("anyseg_tiny", num_classes=25).eval()
    student = create_model("anyseg_tiny", num_classes=25)
    t_feats, t_logits = teacher_outputs(teacher, inputs, available)

    def distance() -> dict[str, float]:
        """The label-free objective (MAD + UMD + CMD) with the student in eval mode."""
        student.eval()
        with torch.no_grad():
            out = StudentTask(student, LossConfig())(inputs, available, label, t_feats, t_logits)
        return {k: float(v) for k, v in out.items()}

    def train(cfg: LossConfig, steps: int) -> None:
        task = StudentTask(student, cfg)
        opt = torch.optim.Adam(student.parameters(), lr=2e-3)
        student.train()
        for _ in range(steps):
            losses = task(inputs, available, label, t_feats, t_logits)
            assert losses["sup"].item() == 0.0  # no labels: nothing supervised
            opt.zero_grad()
            losses["loss"].backward()
            opt.step()

    weights = [p.detach().clone() for p in student.parameters()]
    train(LossConfig(mad=0.0, umd=0.0, cmd=0.0), steps=5)  # without the teacher no weight moves
    assert all(torch.equal(a, b) for a, b in zip(weights, student.parameters(), strict=True))
    before = distance()
    train(LossConfig(), steps=20)  # with it (default weights), the student comes toward it
    after = distance()
    assert after["loss"] < 0.7 * before["loss"]
    assert (
        after["mad"] < before["mad"]
        and after["umd"] < before["umd"]
        and after["cmd"] < before["cmd"]
    )


def test_training_scripts_take_bag_data(recording, unlabelled, tmp_path):
    """`--data bag:PATH` through the real scripts: a teacher on the labelled bag, a student on the
    unlabelled one, and a clear error for a bag that is not there."""
    common = ["--config", "training/configs/smoke.yaml", "optim.epochs=1"]
    teacher = str(tmp_path / "t" / "teacher.pt")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, *args, *common], capture_output=True, text=True, timeout=300
        )

    r = run(
        "training/train_teacher.py",
        "--data",
        f"bag:{recording / 'bag'}",
        "--out",
        str(tmp_path / "t"),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    r = run(
        "training/distill.py",
        "--data",
        f"bag:{unlabelled}",
        "--teacher",
        teacher,
        "--out",
        str(tmp_path / "s"),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "s" / "student.pt").is_file()
    r = run(
        "training/distill.py",
        "--data",
        "bag:/no/such/bag",
        "--teacher",
        teacher,
        "--out",
        str(tmp_path / "x"),
    )
    assert r.returncode != 0 and "does not exist" in r.stderr


def test_bag_training_reads_a_robot_like_recording_without_calibration(tmp_path):
    """--data bag: on jpeg / compressedDepth / evt3 / Ouster-cloud / tf_static input: every
    modality comes out, LiDAR projected with the extrinsic from /tf_static."""
    from anyseg_model.representations import LidarScan
    from anyseg_sim import SyntheticWorld, WorldConfig, write_bag

    write_bag(
        tmp_path / "robot",
        SyntheticWorld(WorldConfig(width=96, height=64, seed=5)),
        frames=20,
        robot=True,
    )
    data = BagDataset(tmp_path / "robot", "train", MODALITIES)
    assert data.modalities == MODALITIES and data.labelled == len(data) > 0
    full = [s for s in data.samples if all(s["available"])]
    assert full, "no frame set with every sensor"
    s = full[0]["arrays"]
    assert s["rgb"].shape == (64, 96, 3) and s["depth"].dtype == np.uint16
    assert s["event"].dtype == np.int16 and np.count_nonzero(s["event"])
    assert isinstance(s["lidar"], LidarScan) and (s["lidar"].projection.depth > 0).sum() > 100
