"""anyseg-synthesize end to end, as a user runs it (the installed console script)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("anyseg-synthesize")  # beside the venv's python


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=240
    )


def test_deliver_format(tmp_path):
    out = tmp_path / "set"
    r = run(
        "--out",
        str(out),
        "--format",
        "deliver",
        "--frames",
        "1",
        "--size",
        "48x32",
        "--seed",
        "2",
        "--conditions",
        "fog",
        "--failures",
        "eventlowres",
        "--scenes",
        "4",
    )
    assert r.returncode == 0, r.stderr
    rgb = sorted(out.glob("img/*/*/*/*_rgb_front.png"))
    assert len(rgb) == 4 * 2
    assert {p.parts[-3] for p in rgb} == {"train", "val"}
    assert "100%" in r.stderr  # the progress bar ran to the end
    assert (out / "calibration.yaml").is_file() and (out / "synthetic.json").is_file()


def test_bag_format_from_another_directory(tmp_path):
    out = tmp_path / "bags"
    r = run(
        "--out",
        str(out),
        "--format",
        "bag",
        "--frames",
        "2",
        "--size",
        "48x32",
        "--conditions",
        "sun,night",
        "--storage",
        "sqlite3",
        "--depth-encoding",
        "32FC1",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["calibration.yaml", "night", "sun"]
    assert list((out / "sun").glob("*.db3"))
    cal = yaml.safe_load((out / "calibration.yaml").read_text())
    assert len(cal["lidar_extrinsic"]) == 16


def test_robot_bag_has_no_calibration_file_and_the_drivers_topics(tmp_path):
    out = tmp_path / "robot"
    r = run("--out", str(out), "--format", "bag", "--frames", "2", "--size", "48x32", "--robot")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["sun"]
    assert "/rgb/image/compressed" in r.stdout and "/event/events" in r.stdout


def test_bad_arguments_name_the_valid_values(tmp_path):
    r = run(
        "--out", str(tmp_path / "x"), "--format", "deliver", "--frames", "1", "--conditions", "snow"
    )
    assert r.returncode == 2 and "sun" in r.stderr and "snow" in r.stderr
    r = run("--out", str(tmp_path / "x"), "--format", "deliver", "--frames", "1", "--size", "big")
    assert r.returncode == 2 and "320x240" in r.stderr
