"""`make demo`'s script on a short recording: runs the real node, reports, leaves nothing behind."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _node_pids(marker: str) -> set[int]:
    """Node processes carrying ``marker`` in their environment: ours, not other sessions'."""
    r = subprocess.run(["pgrep", "-f", "anyseg_ros.node"], capture_output=True, text=True)
    ours = set()
    for pid in (int(p) for p in r.stdout.split()):
        try:
            if marker.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                ours.add(pid)
        except OSError:  # gone meanwhile, or not ours to read
            pass
    return ours


def test_demo_runs_the_node_and_leaves_no_process(tmp_path):
    marker = f"ANYSEG_DEMO_TEST={uuid.uuid4().hex}"
    name, value = marker.split("=")
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
    env = {**os.environ, name: value}  # inherited by the node the demo starts
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "anchor depth" in r.stdout  # RGB was dropped and depth took over
    assert "| subset | mIoU |" in r.stdout and "report.json" in r.stdout
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["mode"] == "live" and report["node_exit_code"] == 0
    assert set(report["outages"]) == {"lidar", "rgb"}
    assert report["frames"] > 40 and report["mean_miou"] is not None
    # Other sessions' nodes may come and go meanwhile: none of ours is left.
    assert not _node_pids(marker)
