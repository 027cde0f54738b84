"""anyseg_lifecycle_node for real: a managed node driven through <node>/change_state from an
rclpy client while the synthetic rig streams into it. Labels only while active; a configure
that fails (unusable checkpoint) leaves it unconfigured and alive, ready to be configured again."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from anyseg_sim.rig import lidar_extrinsic
from anyseg_tools.harness import Watcher, rig_command
from anyseg_tools.localdds import child, loopback_env
from anyseg_tools.params import write_params

pytestmark = pytest.mark.ros

FQN = "/anyseg_node"


def test_lifecycle_transitions(tmp_path, tiny_checkpoint, ros_client):
    values = {
        "checkpoint": str(tmp_path / "missing.pt"),
        "device": "cpu",
        "lidar_extrinsic": lidar_extrinsic(),
    }
    params = write_params(tmp_path / "params.yaml", values)
    cmd = [sys.executable, "-m", "anyseg_ros.lifecycle_node", "--ros-args", "--params-file"]
    env = loopback_env()
    log = (tmp_path / "node.log").open("w")
    rig_cmd = rig_command("--rates", "rgb=10,depth=10,event=10,lidar=5")
    with (
        child([*cmd, str(params)], env, stdout=log, stderr=subprocess.STDOUT) as node,
        child(rig_cmd, env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as rig,
    ):
        w = Watcher(rig, watch=(node,))
        assert ros_client.state(FQN) == "unconfigured"

        # configure with an unusable checkpoint: FAILURE, still unconfigured, still running.
        assert ros_client.change_state(FQN, "configure") is False
        assert ros_client.state(FQN) == "unconfigured" and node.poll() is None
        (ok,) = ros_client.set_parameters(FQN, checkpoint=str(tiny_checkpoint))
        assert ok.successful, ok.reason
        assert ros_client.change_state(FQN, "configure") is True
        assert ros_client.state(FQN) == "inactive"
        (fixed,) = ros_client.set_parameters(FQN, checkpoint="other.pt")
        assert not fixed.successful and "cannot change while the model is configured" in (
            fixed.reason
        )
        time.sleep(1.0)
        assert not w.window("labels", 0, time.monotonic())  # inactive: nothing published

        # activate: labels; deactivate: none; activate again: labels (the model was kept).
        assert ros_client.change_state(FQN, "activate") is True
        first = w.wait_for(lambda e: e["ev"] == "labels", timeout=30)
        assert ros_client.change_state(FQN, "deactivate") is True
        t_off = time.monotonic()
        time.sleep(1.5)
        assert not w.window("labels", t_off + 0.3, time.monotonic())
        assert ros_client.state(FQN) == "inactive"
        t_on = time.monotonic()
        assert ros_client.change_state(FQN, "activate") is True
        again = w.wait_for(lambda e: e["ev"] == "labels", timeout=10, after=t_on)
        assert again["t"] - t_on < 5.0 and first["frame_id"] == again["frame_id"] == "camera_rgb"

        # cleanup frees the model; shutdown ends the process cleanly.
        assert ros_client.change_state(FQN, "deactivate") is True
        assert ros_client.change_state(FQN, "cleanup") is True
        assert ros_client.state(FQN) == "unconfigured"
        assert ros_client.change_state(FQN, "shutdown") is True
        assert node.wait(15) == 0
    text = (tmp_path / "node.log").read_text()
    assert "Traceback" not in text, text
    assert text.count("configure failed:") == 1 and "missing.pt" in text, text
