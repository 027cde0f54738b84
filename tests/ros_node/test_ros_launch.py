"""launch/segment.launch.py run against stand-ins for `launch` / `launch_ros` (not installable
here): the Node it starts must be this package's console script with config/segment.yaml, and
that YAML must hold valid settings for the node name it launches."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

from anyseg_ros.core.settings import Settings, flatten_parameters

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "segment.launch.py"


class Recorded:
    """Any launch object: remembers its constructor arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _standins() -> dict[str, types.ModuleType]:
    kinds = {
        "launch": ["LaunchDescription"],
        "launch.actions": ["DeclareLaunchArgument"],
        "launch.substitutions": ["LaunchConfiguration", "PathJoinSubstitution"],
        "launch_ros": [],
        "launch_ros.actions": ["Node"],
        "launch_ros.substitutions": ["FindPackageShare"],
    }
    mods = {}
    for name, classes in kinds.items():
        mod = types.ModuleType(name)
        for cls in classes:
            setattr(mod, cls, type(cls, (Recorded,), {}))
        mods[name] = mod
    return mods


def _setup_py() -> str:
    return (REPO / "setup.py").read_text()


def _resolve(x, shares: dict[str, Path], launch_args: dict[str, object]):
    """Evaluate the stand-in substitutions the way launch would."""
    kind = type(x).__name__
    if isinstance(x, (str, int, float)) or x is None:
        return x
    if isinstance(x, list):
        return [_resolve(v, shares, launch_args) for v in x]
    if kind == "FindPackageShare":
        return str(shares[x.args[0]])
    if kind == "PathJoinSubstitution":
        return os.path.join(*(_resolve(p, shares, launch_args) for p in x.args[0]))
    if kind == "LaunchConfiguration":
        return _resolve(launch_args[x.args[0]], shares, launch_args)
    raise AssertionError(f"unexpected substitution {kind}")


@pytest.fixture
def launched(monkeypatch):
    for name, mod in _standins().items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location("segment_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert type(description).__name__ == "LaunchDescription"
    entities = description.args[0]
    declared = {
        e.args[0]: e.kwargs["default_value"]
        for e in entities
        if type(e).__name__ == "DeclareLaunchArgument"
    }
    (node,) = [e for e in entities if type(e).__name__ == "Node"]
    return node, declared


def test_launch_starts_the_console_script_of_this_package(launched):
    node, _ = launched
    package = re.search(r"<name>(.+?)</name>", (REPO / "package.xml").read_text()).group(1)
    assert (
        node.kwargs["package"] == package == re.search(r'PACKAGE = "(.+?)"', _setup_py()).group(1)
    )
    scripts = dict(re.findall(r'"(\w+) = ([\w.]+:\w+)"', _setup_py()))
    assert node.kwargs["executable"] in scripts, scripts
    module, func = scripts[node.kwargs["executable"]].split(":")
    assert callable(getattr(importlib.import_module(module), func))


def test_launch_passes_the_installed_segment_yaml(launched):
    node, declared = launched
    # setup.py installs config/*.yaml into share/<package>/config: the share mirrors the repository.
    assert '(f"share/{PACKAGE}/config", glob("config/*.yaml")' in _setup_py()
    shares = {node.kwargs["package"]: REPO}
    (params_file,) = _resolve(node.kwargs["parameters"], shares, declared)
    assert Path(params_file) == REPO / "config" / "segment.yaml"
    assert _resolve(node.kwargs["namespace"], shares, declared) == ""

    doc = yaml.safe_load(Path(params_file).read_text())
    assert list(doc) == [node.kwargs["name"]]  # parameters keyed by the launched node's name
    params = doc[node.kwargs["name"]]["ros__parameters"]
    settings = Settings.from_parameters(flatten_parameters(params))
    assert not os.path.isabs(settings.checkpoint)  # no machine paths in committed config
    assert settings.modalities == ("rgb", "depth", "event", "lidar")
    assert settings.sync.timeout_ns["lidar"] == 300_000_000


def test_segment_yaml_extrinsic_is_the_synthetic_rigs():
    from anyseg_sim.config import WorldConfig
    from anyseg_sim.rig import Rig

    params = yaml.safe_load((REPO / "config" / "segment.yaml").read_text())["anyseg_node"][
        "ros__parameters"
    ]
    np.testing.assert_allclose(
        np.reshape(params["lidar_extrinsic"], (4, 4)), Rig(WorldConfig()).T_cam_lidar, atol=1e-5
    )
