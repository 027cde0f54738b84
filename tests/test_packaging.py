"""The ROS 2 packaging for real: `colcon build` of the ament_python package, and `make install`
being a no-op when nothing changed (a second `make test` must not reinstall)."""

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FILES = [
    "setup.py",
    "setup.cfg",
    "package.xml",
    "resource",
    "anyseg_model",
    "anyseg_ros",
    "launch",
    "config",
]


def test_colcon_build_installs_an_ament_python_package(tmp_path):
    src = tmp_path / "src" / "anyseg_ros"
    src.mkdir(parents=True)
    for name in PACKAGE_FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy(path, src / name)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    r = subprocess.run(
        ["colcon", "build", "--base-paths", "src"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]

    prefix = tmp_path / "install" / "anyseg_ros"
    share = prefix / "share" / "anyseg_ros"
    assert (prefix / "share/ament_index/resource_index/packages/anyseg_ros").is_file()
    assert (share / "package.xml").read_text() == (ROOT / "package.xml").read_text()
    for folder, pattern in (("launch", "*.launch.py"), ("config", "*.yaml")):
        assert {p.name for p in (ROOT / folder).glob(pattern)} == {
            p.name for p in (share / folder).glob(pattern)
        }
    # Every console script lands where `ros2 run` / `ros2 launch` look: lib/<package>/<exe>.
    entry_points = configparser.ConfigParser()
    entry_points.read(
        next(prefix.glob("lib/python*/site-packages/anyseg_ros*.egg-info/entry_points.txt"))
    )
    scripts = (
        list(entry_points["console_scripts"]) if entry_points.has_section("console_scripts") else []
    )
    assert "anyseg_node" in scripts
    for exe in scripts:
        assert os.access(prefix / "lib" / "anyseg_ros" / exe, os.X_OK), exe
    # The installed packages import from the install space, not from this checkout.
    site = next(prefix.glob("lib/python*/site-packages"))
    r = subprocess.run(
        [sys.executable, "-c", "import anyseg_model, anyseg_ros; print(anyseg_model.__file__)"],
        cwd=tmp_path,
        env=dict(env, PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and str(site) in r.stdout, r.stderr


def test_make_install_is_up_to_date_after_install():
    """`make -q install` exits 0 only if nothing would be rebuilt: the venv stamp is current."""
    r = subprocess.run(["make", "-q", "install"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, "make install would reinstall although nothing changed"
