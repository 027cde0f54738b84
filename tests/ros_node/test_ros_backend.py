"""backend: onnxruntime in the real node, over loopback DDS, with the shipped checkpoint: the
labels it publishes are the torch Segmentor's on the same frame set (parity bound 1e-4 on the
logits, so the argmax agrees but for near-ties)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anyseg_model import Segmentor
from anyseg_model.representations import LidarScan
from anyseg_tools.harness import Watcher, node_command
from anyseg_tools.localdds import child, loopback_env
from anyseg_tools.params import write_params

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "checkpoints" / "anyseg_tiny_synthetic.pt"
FEEDER = ROOT / "bench" / "feeder.py"
W, H, POINTS = 160, 120, 20_000

pytestmark = pytest.mark.ros


def _feeder_module():
    """bench/feeder.py's frame builder (the very arrays the feeder publishes)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("feeder", FEEDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_onnxruntime_backend_publishes_the_labels_torch_computes(tmp_path):
    from anyseg_model.export import main as export

    onnx_dir = tmp_path / "onnx"
    assert export([str(SHIPPED), "--out", str(onnx_dir), "--subsets", "rgb+depth+event+lidar"]) == 0
    feeder = _feeder_module()
    values = {
        "checkpoint": str(SHIPPED),
        "device": "cpu",
        "backend": "onnxruntime",
        "onnx_dir": str(onnx_dir),
        "threads": 1,
        "lidar_extrinsic": feeder.LIDAR_TO_CAMERA,
        "publish_color": False,
    }
    params = write_params(tmp_path / "params.yaml", values)
    record = tmp_path / "labels"
    record.mkdir()
    env = loopback_env()
    feed = [sys.executable, str(FEEDER), "--width", str(W), "--height", str(H)]
    feed += ["--points", str(POINTS), "--rate", "5", "--record", str(record), "--record-max", "5"]
    log = (tmp_path / "node.log").open("w")
    with (
        child(node_command(params), env, stdout=log, stderr=subprocess.STDOUT) as node,
        child(feed, env, stdout=subprocess.PIPE, text=True) as fp,
    ):
        w = Watcher(fp, watch=(node,))
        w.wait_for(lambda e: e["ev"] == "recorded", timeout=120)  # start, export, discovery
        last = w.wait_for(
            lambda e: e["ev"] == "recorded" and len(list(record.glob("*.npy"))) >= 5, timeout=60
        )
        w.wait_for(lambda e: e["ev"] == "info" and e["stamp_ns"] == last["stamp"], timeout=10)
    infos = {e["stamp_ns"]: e for e in w.events if e["ev"] == "info"}
    assert "onnxruntime" in (tmp_path / "node.log").read_text()

    raw = feeder.frame_arrays(W, H, POINTS)
    K = np.array(feeder.camera_matrix(W, H)).reshape(3, 3)
    T = np.array(feeder.LIDAR_TO_CAMERA).reshape(4, 4)
    torch_seg = Segmentor.from_checkpoint(SHIPPED, device="cpu")
    compared = 0
    for path in sorted(record.glob("*.npy")):
        stamp = int(path.stem)
        if stamp not in infos:  # the first ones can beat the info subscription's discovery
            continue
        mods = infos[stamp]["modalities"]  # what went into this frame
        arrays = {m: raw[m] for m in mods if m != "lidar"}
        if "lidar" in mods:
            arrays["lidar"] = LidarScan(raw["lidar"], K, T, (W, H))
        want = torch_seg.predict(arrays).labels
        got = np.load(path)
        assert got.shape == (H, W)
        assert (got == want).mean() >= 0.999, (mods, (got == want).mean())
        compared += 1
    assert compared >= 3
