"""bench/gpu.sh cannot run here (no GPU), so its dry run does, every step on the CPU at tiny
sizes: the script a GPU machine runs is the script that is tested."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.ros  # its node step runs the node over loopback DDS


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu.sh"), *args],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=280,
    )


def test_gpu_script_dry_run_on_the_cpu():
    r = _run("--device", "cpu")
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    for header in ("#### 1. torch", "#### 2. onnxruntime vs torch", "#### 3. one frame set"):
        assert header in out, out
    assert re.search(r"\| anyseg_tiny \| 64x48 \| fp32 \|", out)
    assert re.search(r"\| anyseg_tiny \| 64x48 \| bf16 \|", out)
    assert len(re.findall(r"\| anyseg_tiny \| 64x48 \| [14] \| [\d.]+ \| [\d.]+ \|", out)) == 2
    assert len(re.findall(r"wall clock: decode [\d.]+, sync [\d.]+, preprocess [\d.]+", out)) == 2
    e2e = re.findall(r"end to end anyseg_tiny \((torch|onnxruntime).*labels_hz ([\d.]+)", out)
    assert [b for b, _ in e2e] == ["torch", "onnxruntime"] and all(float(hz) > 0 for _, hz in e2e)


def test_gpu_script_refuses_an_unknown_device():
    r = _run("--device", "tpu")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "tpu" in r.stderr
