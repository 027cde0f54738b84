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


def _evaluate(root, mode, *extra):
    out = root / (mode + "".join(extra))
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
        *extra,
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
    # The schedule is reported apart from what the node noticed (which starts a timeout later).
    assert offline["schedule"] == live["schedule"] == {"lidar": [[0.6, 1.4]], "rgb": [[1.6, 2.4]]}
    assert offline["outages"]["lidar"][0][0] > 0.6

    # Under sim time (the replay's /clock, the recorded stamps): the same frames as without.
    sim, sim_frames, _ = _evaluate(recording, "live", "--sim-time")
    assert sim["sim_time"] is True and sim["node_exit_code"] == 0
    assert set(sim_frames) <= set(off_frames)
    assert len(sim_frames) + sim["frames_dropped"] >= len(off_frames) - 2
    both = set(sim_frames) & set(live_frames)
    # Each run misses only the frames it counted as dropped (busy worker on 2 shared cores).
    assert len(both) >= len(off_frames) - sim["frames_dropped"] - live["frames_dropped"] - 4
    same = [s for s in both if sim_frames[s]["modalities"] == live_frames[s]["modalities"]]
    assert len(same) >= 0.9 * len(both)
    assert 0 < sim["latency_ms"]["p50"] < 1000  # measured on the bag's clock
    assert set(sim["outages"]) == {"lidar", "rgb"}


def test_timeline_shades_the_schedule_and_marks_what_the_node_noticed_apart():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from anyseg_tools.report import draw_timeline

    fig, (ax1, ax2) = plt.subplots(2, 1)
    report = {"schedule": {"lidar": [[1.0, 2.0]]}, "outages": {"lidar": [[1.3, 2.1]]}}
    draw_timeline(ax1, ax2, report)

    def spans(ax, gid):
        """(x0, x1) in data coordinates of each artist with this gid."""
        out = []
        for artist in [*ax.patches, *ax.collections, *ax.lines]:
            if artist.get_gid() != gid:
                continue
            if hasattr(artist, "get_bbox"):  # axvspan's Rectangle
                xs = [artist.get_bbox().x0, artist.get_bbox().x1]
            elif hasattr(artist, "get_segments"):  # hlines
                xs = [p[0] for seg in artist.get_segments() for p in seg]
            else:  # axvline
                xs = list(artist.get_xdata())
            out.append((float(min(xs)), float(max(xs))))
        return out

    assert spans(ax1, "schedule:lidar") and all(
        s == (1.0, 2.0) for s in spans(ax1, "schedule:lidar")
    )
    assert spans(ax2, "schedule:lidar")
    assert spans(ax2, "noticed:lidar") == [(1.3, 2.1)]  # its own mark, not the shading
    assert spans(ax1, "noticed:lidar") == [(1.3, 1.3)]  # when the node noticed
    plt.close(fig)


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
