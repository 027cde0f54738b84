"""launch/segment.launch.py run against stand-ins for `launch` / `launch_ros` (not installable
here): every argument (namespace, params_file, use_sim_time, log_level, lifecycle, autostart,
respawn) changes what it launches as it should; the node it starts is this package's console
script with config/segment.yaml, and that YAML holds valid settings for the launched node in any
namespace. tests/ros_node/test_ros_node.py runs the namespaced command for real."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from anyseg_ros.core.overrides import key_matches, node_keys
from anyseg_ros.core.settings import Settings, flatten_parameters

from .launchtools import REPO, Resolver, command, console_scripts, kind, load


def _setup_py() -> str:
    return (REPO / "setup.py").read_text()


def resolve(monkeypatch, **launch_args) -> Resolver:
    return Resolver(load(monkeypatch), launch_args)


def test_defaults_start_the_plain_console_script_with_the_installed_segment_yaml(monkeypatch):
    r = resolve(monkeypatch)
    node = r.node()
    assert kind(node) == "Node"
    package = re.search(r"<name>(.+?)</name>", (REPO / "package.xml").read_text()).group(1)
    assert node.kwargs["package"] == package
    assert package == re.search(r'PACKAGE = "(.+?)"', _setup_py()).group(1)
    scripts = console_scripts()
    assert node.kwargs["executable"] == "anyseg_node" and "anyseg_node" in scripts
    module, func = scripts[node.kwargs["executable"]].split(":")
    assert callable(getattr(importlib.import_module(module), func))
    # setup.py installs config/*.yaml into share/<package>/config: the share mirrors the repo.
    assert '(f"share/{PACKAGE}/config", glob("config/*.yaml")' in _setup_py()
    params_file, extra = r(node.kwargs["parameters"])
    assert Path(params_file) == REPO / "config" / "segment.yaml"
    assert extra == {"use_sim_time": False}
    assert r(node.kwargs["namespace"]) == "" and r(node.kwargs["respawn"]) == "false"
    assert r(node.kwargs["arguments"]) == ["--ros-args", "--log-level", "info"]


def test_namespace_use_sim_time_log_level_and_respawn(monkeypatch, tmp_path):
    r = resolve(
        monkeypatch, namespace="robot1", use_sim_time="true", log_level="debug", respawn="true"
    )
    node = r.node()
    assert r(node.kwargs["namespace"]) == "robot1"
    assert r(node.kwargs["parameters"])[1] == {"use_sim_time": True}
    assert r(node.kwargs["arguments"])[-1] == "debug" and r(node.kwargs["respawn"]) == "true"
    argv = command(monkeypatch, {"namespace": "robot1", "use_sim_time": "true"}, tmp_path)
    assert argv[argv.index("--ros-args", 4) :][:5] == [
        "--ros-args",
        "-r",
        "__node:=anyseg_node",
        "-r",
        "__ns:=/robot1",
    ]
    launch_params = yaml.safe_load(Path(argv[-1]).read_text())
    assert launch_params == {"/**": {"ros__parameters": {"use_sim_time": True}}}


def test_lifecycle_starts_the_managed_node_and_autostart_drives_it(monkeypatch):
    from lifecycle_msgs.msg import Transition

    r = resolve(monkeypatch, lifecycle="true")
    launched = r.launched()
    node = r.node()
    assert kind(node) == "LifecycleNode" and node.kwargs["executable"] == "anyseg_lifecycle_node"
    assert "anyseg_lifecycle_node" in console_scripts()
    plain = resolve(monkeypatch).node()
    same = ("package", "name", "parameters", "namespace", "arguments", "respawn")
    assert all(r(node.kwargs[k]) == r(plain.kwargs[k]) for k in same)  # same node otherwise
    (configure,) = [e for e in launched if kind(e) == "EmitEvent"]
    event = configure.kwargs["event"].kwargs
    assert event["transition_id"] == Transition.TRANSITION_CONFIGURE
    assert event["lifecycle_node_matcher"] == ("matches_action", node)
    (handler,) = [e.args[0] for e in launched if kind(e) == "RegisterEventHandler"]
    hk = handler.kwargs
    assert hk["target_lifecycle_node"] is node
    # Only after configuring: a manual deactivate later is not undone.
    assert (hk["start_state"], hk["goal_state"]) == ("configuring", "inactive")
    (activate,) = hk["entities"]
    assert activate.kwargs["event"].kwargs["transition_id"] == Transition.TRANSITION_ACTIVATE
    assert activate.kwargs["event"].kwargs["lifecycle_node_matcher"] == ("matches_action", node)

    manual = resolve(monkeypatch, lifecycle="true", autostart="false")
    assert [kind(e) for e in manual.launched()] == ["LifecycleNode"]
    with pytest.raises(ValueError, match="invalid condition"):
        resolve(monkeypatch, lifecycle="maybe").launched()


@pytest.mark.parametrize("namespace", ["", "/robot1", "/fleet/robot7"])
def test_segment_yaml_holds_valid_settings_under_any_namespace(namespace):
    doc = yaml.safe_load((REPO / "config" / "segment.yaml").read_text())
    fqn = f"{namespace}/anyseg_node"
    matching = [params for key, params in node_keys(doc) if key_matches(key, fqn)]
    assert len(matching) == 1, (fqn, list(doc))
    settings = Settings.from_parameters(flatten_parameters(matching[0]))
    assert not os.path.isabs(settings.checkpoint)  # no machine paths in committed config
    assert settings.modalities == ("rgb", "depth", "event", "lidar")
    assert settings.sync.timeout_ns["lidar"] == 300_000_000


def test_segment_yaml_extrinsic_is_the_synthetic_rigs():
    from anyseg_sim.config import WorldConfig
    from anyseg_sim.rig import Rig

    doc = yaml.safe_load((REPO / "config" / "segment.yaml").read_text())
    ((_, params),) = node_keys(doc)
    np.testing.assert_allclose(
        np.reshape(params["lidar_extrinsic"], (4, 4)), Rig(WorldConfig()).T_cam_lidar, atol=1e-5
    )
