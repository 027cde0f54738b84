"""Live evaluation (real node process, bag replayed over loopback DDS) against offline evaluation
of the same bag and drop schedule: they must agree on which modalities each frame used."""

import csv
import json
import subprocess
import sys

from anyseg_model import create_model, save_checkpoint
from anyseg_model.classes import DELIVER_PALETTE
from anyseg_tools.localdds import loopback_env

SCHEDULE = ["--drop", "lidar:0.6-1.4", "--drop", "rgb:1.6-2.4", "--param", "slop_ms=35"]


def _evaluate(root, mode):
    out = root / mode
    cmd = [
        sys.executable,
        "-m",
        "anyseg_tools.evaluate",
        str(root / "bag"),
        "--checkpoint",
        str(root / "tiny.pt"),
        "--out",
        str(out),
        "--mode",
        mode,
        *SCHEDULE,
    ]
    r = subprocess.run(cmd, env=loopback_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    with (out / "frames.csv").open() as f:
        frames = {int(row["stamp_ns"]): row for row in csv.DictReader(f)}
    return json.loads((out / "report.json").read_text()), frames, r.stdout


def test_live_and_offline_agree_on_modalities(recording):
    offline, off_frames, _ = _evaluate(recording, "offline")
    live, live_frames, stdout = _evaluate(recording, "live")

    assert "[" in stdout and "anchor" in stdout  # the once-a-second console line
    assert live["node_exit_code"] == 0
    # Every live frame is one the offline run made too (same anchor stamps), and whatever the
    # live run missed it counted as dropped.
    assert set(live_frames) <= set(off_frames)
    assert len(live_frames) + live["frames_dropped"] >= len(off_frames) - 2
    common = sorted(live_frames)
    same = [s for s in common if live_frames[s]["modalities"] == off_frames[s]["modalities"]]
    # Arrival jitter on a loaded machine can move a message across a wait or timeout edge.
    assert len(same) >= 0.9 * len(common), [
        (s, live_frames[s]["modalities"], off_frames[s]["modalities"])
        for s in common
        if s not in same
    ]
    # Both saw the schedule: LiDAR and then RGB out, and frames went on without them.
    for report in (offline, live):
        assert set(report["outages"]) == {"lidar", "rgb"}
        assert any("lidar" not in k and "rgb" in k for k in report["frames_per_subset"])
        assert any("rgb" not in k for k in report["frames_per_subset"])
    # Only a live run has a latency (stamp -> labels received); offline has model time alone.
    assert live["latency_ms"]["p50"] > 0 and offline["latency_ms"]["p50"] is None
    assert offline["processing_ms"]["p50"] > 0


def test_live_evaluation_exits_non_zero_when_the_node_fails(recording, tmp_path):
    """The evaluator accepts the settings, but the node refuses the checkpoint (no LiDAR in it)."""
    rgb_only = tmp_path / "rgb_only.pt"
    save_checkpoint(create_model("anyseg_tiny", num_classes=25, modalities=("rgb",)), rgb_only)
    cmd = [
        sys.executable,
        "-m",
        "anyseg_tools.evaluate",
        str(recording / "bag"),
        "--checkpoint",
        str(rgb_only),
        "--out",
        str(tmp_path / "out"),
        "--mode",
        "live",
        "--param",
        "modalities=[rgb,lidar]",
    ]
    r = subprocess.run(cmd, env=loopback_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "node failed" in r.stdout and "supports modalities ['rgb']" in r.stdout


def test_offline_export_of_labelled_lidar_clouds(recording, tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "anyseg_tools.evaluate",
        str(recording / "bag"),
        "--checkpoint",
        str(recording / "tiny.pt"),
        "--out",
        str(tmp_path),
        "--export-ply",
        "2",
    ]
    r = subprocess.run(cmd, env=loopback_env(), capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    clouds = sorted((tmp_path / "clouds").glob("*.ply"))
    assert len(clouds) == 2
    lines = clouds[0].read_text().splitlines()
    end = lines.index("end_header")
    count = int(next(line for line in lines if line.startswith("element vertex")).split()[-1])
    rows = [line.split() for line in lines[end + 1 :]]
    assert len(rows) == count > 1000 and all(len(row) == 8 for row in rows)
    labels = {int(row[4]) for row in rows}
    assert 255 in labels and labels - {255}  # points behind the camera, and labelled ones in view
    for row in rows[:500]:
        label, rgb = int(row[4]), tuple(int(v) for v in row[5:])
        assert rgb == (DELIVER_PALETTE[label] if label < 25 else (128, 128, 128))
