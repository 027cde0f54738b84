"""The whole chain as a user runs it: train_teacher.py -> distill.py -> evaluate.py with
training/configs/smoke.yaml, in subprocesses from the repository root."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from anyseg_model import Segmentor, all_subsets, load_checkpoint, subset_name

ROOT = Path(__file__).resolve().parents[2]
SMOKE = "training/configs/smoke.yaml"


def _run(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    r = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chain")
    data = f"data.cache_dir={tmp / 'data'}"
    r = _run("training/train_teacher.py", "--config", SMOKE, "--out", str(tmp / "teacher"), data)
    assert "loss=" in r.stderr  # the progress bar shows the running loss
    _run(
        "training/distill.py",
        "--config",
        SMOKE,
        "--teacher",
        str(tmp / "teacher" / "teacher.pt"),
        "--out",
        str(tmp / "student"),
        data,
    )
    r = _run(
        "training/evaluate.py",
        "--checkpoint",
        str(tmp / "student" / "student.pt"),
        "--out",
        str(tmp / "eval"),
        data,
    )
    return tmp, r.stdout


def test_every_subset_scored_in_the_issue_layout(chain):
    tmp, stdout = chain
    d = json.loads((tmp / "eval" / "eval.json").read_text())
    names = [subset_name(s) for s in all_subsets()]
    assert list(d["subsets"]) == names
    for s in d["subsets"].values():
        assert {"miou", "miou_nan0", "per_class_iou"} <= set(s)
        assert 0.0 <= s["miou_nan0"] <= s["miou"] <= 100.0
    assert d["mean_miou"] == pytest.approx(
        np.mean([s["miou"] for s in d["subsets"].values()]), abs=0.01
    )
    assert len(d["classes"]) == 25 and "| rgb+depth+event+lidar |" in stdout
    # evaluate.py on the student's own config reproduces the score the training run wrote
    own = json.loads((tmp / "student" / "eval.json").read_text())
    assert own["subsets"] == d["subsets"]


def test_checkpoints_describe_themselves_and_the_node_can_run_them(chain):
    tmp, _ = chain
    for name in ("teacher/teacher.pt", "student/student.pt"):
        ck = load_checkpoint(tmp / name)
        assert ck.input_size == (48, 64)
        assert ck.representations["lidar"].name == "lidar_projected"
        assert ck.meta["config"]["data"]["input_size"] == [48, 64]
        assert ck.meta["role"] in ("teacher", "student")
    seg = Segmentor.from_checkpoint(tmp / "student" / "student.pt", device="cpu")
    from training.data.synth_dataset import SyntheticDataset, SyntheticSpec

    raw = SyntheticDataset(
        SyntheticSpec("val", frames=1, worlds=1, height=48, width=64),
        in_memory=True,
        show_progress=False,
    )[0]["arrays"]
    pred = seg.predict({"lidar": raw["lidar"], "rgb": raw["rgb"]})
    assert pred.labels.shape == (48, 64) and pred.modalities == ("rgb", "lidar")


def test_run_folders_hold_config_logs_and_resumable_state(chain):
    tmp, _ = chain
    for run in ("teacher", "student"):
        assert (tmp / run / "config.yaml").is_file() and (tmp / run / "checkpoint.pt").is_file()
        log = (tmp / run / "log.csv").read_text().splitlines()
        assert log[0] == "step,epoch,key,value" and any(",train/sup," in line for line in log)
    keys = {
        line.split(",")[2] for line in (tmp / "student" / "log.csv").read_text().splitlines()[1:]
    }
    assert {"train/mad", "train/umd", "train/cmd", "train/ummkd"} <= keys  # smoke runs every term


def test_cli_rejects_unknown_keys():
    r = subprocess.run(
        [sys.executable, "training/train_teacher.py", "--config", SMOKE, "optim.lrr=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode != 0 and "optim.lr" in r.stderr


def test_shipping_a_checkpoint_drops_training_state_and_absolute_paths(chain, tmp_path):
    from anyseg_model.checkpoint import read_checkpoint
    from training.ship_checkpoint import main, relative_paths

    tmp, _ = chain
    assert relative_paths({"a": [f"synthetic:{ROOT / 'runs' / 'x'}", "/elsewhere"]}, ROOT) == {
        "a": ["synthetic:runs/x", "/elsewhere"]
    }
    src = tmp / "student" / "student.pt"
    assert main([str(src), str(tmp_path / "ship.pt"), "--root", str(tmp)]) == 0
    d = read_checkpoint(tmp_path / "ship.pt")
    assert d["extra"] == {} and str(tmp) not in repr(d["meta"])
    assert d["meta"]["config"]["student"]["teacher"] == "teacher/teacher.pt"
    a, b = load_checkpoint(src), load_checkpoint(tmp_path / "ship.pt")
    assert a.representations == b.representations and a.input_size == b.input_size
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k
