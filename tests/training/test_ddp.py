"""DDP for real: torchrun with 2 CPU ranks (gloo, loopback only) trains a smoke teacher; the
final validation is sharded over the ranks and the confusion matrices all-reduced, so the
scores equal a single-process evaluation of the same checkpoint, every sample counted once."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def test_two_rank_teacher_scores_every_val_sample_once(tmp_path):
    env = dict(
        os.environ,
        MASTER_ADDR="127.0.0.1",
        GLOO_SOCKET_IFNAME="lo",  # loopback only
        OMP_NUM_THREADS="1",
    )
    common = [
        "--config",
        "training/configs/smoke.yaml",
        f"data.cache_dir={tmp_path / 'data'}",
        "data.train_frames=8",
        "data.val_frames=5",  # 3 + 2: uneven shards
        "optim.epochs=1",
        "optim.batch_size=1",  # batches of one: the same kernels per sample in both evaluations
        "run.eval_every=1",
    ]
    r = subprocess.run(
        [
            str(TORCHRUN),
            "--standalone",
            "--nproc_per_node=2",
            "training/train_teacher.py",
            "--out",
            str(tmp_path / "ddp"),
            *common,
            "optim.epochs=2",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp" / "eval.json").read_text())
    r = subprocess.run(
        [
            sys.executable,
            "training/evaluate.py",
            "--checkpoint",
            str(tmp_path / "ddp" / "teacher.pt"),
            "--out",
            str(tmp_path / "single"),
            f"data.cache_dir={tmp_path / 'data'}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    single = json.loads((tmp_path / "single" / "eval.json").read_text())
    assert list(ddp["subsets"]) == list(single["subsets"])
    for name, s in single["subsets"].items():
        assert ddp["subsets"][name]["pixels"] == s["pixels"], name  # all 5 samples, once
        assert ddp["subsets"][name] == s, name  # the summed shards ARE the whole split
    log = (tmp_path / "ddp" / "log.csv").read_text()
    assert ",val/mean_miou," in log  # the in-training validation ran on both ranks
