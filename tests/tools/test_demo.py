"""`make demo`'s script on a short recording: runs the real node, reports, leaves nothing behind."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _node_pids() -> set[int]:
    r = subprocess.run(["pgrep", "-f", "anyseg_ros.node"], capture_output=True, text=True)
    return {int(p) for p in r.stdout.split()}


def test_demo_runs_the_node_and_leaves_no_process(tmp_path):
    before = _node_pids()
    cmd = [
        sys.executable,
        "scripts/demo.py",
        "--out",
        str(tmp_path),
        "--frames",
        "40",
        "--conditions",
        "sun,night",
        "--size",
        "160x120",
    ]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "anchor depth" in r.stdout  # RGB was dropped and depth took over
    assert "| subset | mIoU |" in r.stdout and "report.json" in r.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "live" and report["node_exit_code"] == 0
    assert set(report["outages"]) == {"lidar", "rgb"}
    assert report["frames"] > 40 and report["mean_miou"] is not None
    # Other sessions' nodes may come and go meanwhile: none of ours is left.
    assert not _node_pids() - before
