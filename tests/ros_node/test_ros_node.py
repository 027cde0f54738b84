"""anyseg_node for real: rclpy processes over loopback DDS (anyseg_tools.localdds), a rig streaming
synthetic-world sensors into the node (camera and depth 10 Hz, events 30 Hz, a 32-beam LiDAR at
5 Hz), sensors stopped and restarted, malformed messages. The rates leave the untrained
anyseg_tiny room on 2 shared cores; tests/ros_core checks the synchroniser at any rate."""

from __future__ import annotations

import signal
import statistics
import subprocess
import time

import numpy as np
import pytest

from anyseg_sim.rig import lidar_extrinsic
from anyseg_tools.harness import Watcher, node_command, rig_command, sensor
from anyseg_tools.localdds import child, loopback_env
from anyseg_tools.params import write_params

from .launchtools import REPO
from .launchtools import command as launch_command

LIDAR_TO_CAMERA = lidar_extrinsic()

pytestmark = pytest.mark.ros

# Labels per anchor message published: the worker drops a frame only when inference is still busy
# with the previous one (2 shared cores, the rig and pytest beside the node).
NEARLY = 0.75
RATES = "rgb=10,depth=10,event=30,lidar=5"
LIDAR_TIMEOUT_S = 0.3
RGB_TIMEOUT_S = 0.5
MARGIN_S = 1.0  # diagnostics go out on every state change; this covers DDS and a busy CPU


def settle(seconds: float) -> tuple[float, float]:
    t0 = time.monotonic()
    time.sleep(seconds)
    return t0, time.monotonic()


def test_node_segments_through_sensor_dropouts_and_bad_messages(tmp_path, tiny_checkpoint):
    values = {
        "checkpoint": str(tiny_checkpoint),
        "device": "cpu",
        "lidar_extrinsic": LIDAR_TO_CAMERA,
        "timeout_ms": RGB_TIMEOUT_S * 1000,
        "lidar.timeout_ms": LIDAR_TIMEOUT_S * 1000,
        # The rig renders depth and events on the RGB grid under their own frame ids.
        "depth.registered": True,
        "event.registered": True,
    }
    params = write_params(tmp_path / "params.yaml", values)
    env = loopback_env()
    node_log = (tmp_path / "node.log").open("w")
    with (
        child(node_command(params), env, stdout=node_log, stderr=subprocess.STDOUT) as node,
        child(
            rig_command("--rates", RATES),
            env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as rig,
    ):
        w = Watcher(rig, watch=(node,))
        w.wait_for(lambda e: e["ev"] == "labels", timeout=90)  # model load + warm-up + discovery
        settle(1.0)  # the first frames at a new size are slower (kernel selection)

        # 1. Every sensor: labels at (nearly) the camera rate, with the camera's header and size.
        t0, t1 = settle(3.0)
        labels = w.window("labels", t0, t1)
        assert len(labels) >= NEARLY * len(w.published("rgb", t0, t1)), len(labels)
        assert {e["stamp"] for e in labels} <= set(w.published("rgb", t0 - 0.5, t1))
        assert {(e["frame_id"], e["w"], e["h"], e["enc"]) for e in labels} == {
            ("camera_rgb", 160, 120, "mono8")
        }
        infos = w.window("info", t0, t1)
        assert {i["anchor"] for i in infos} == {"rgb"}
        with_lidar = [i for i in infos if i["modalities"] == ["rgb", "depth", "event", "lidar"]]
        assert len(with_lidar) >= 0.3 * len(infos)  # every other camera frame meets a LiDAR sweep
        points = w.window("points", t0, t1)
        assert points and {(p["frame_id"], tuple(p["fields"])) for p in points} == {
            ("lidar", ("x", "y", "z", "intensity", "label"))
        }
        latency = statistics.median(i["latency_ms"] for i in infos)
        assert latency < 500, latency

        # 2. LiDAR stops: stale within its timeout (+ margin); frames go on without it.
        t_stop = w.send("stop lidar")
        stale = w.wait_for(
            lambda e: e["ev"] == "diag" and sensor(e, "lidar")["state"] == "stale",
            LIDAR_TIMEOUT_S + MARGIN_S + 1,
            t_stop,
        )
        assert stale["t"] - t_stop <= LIDAR_TIMEOUT_S + MARGIN_S
        assert sensor(stale, "rgb")["state"] == "alive"
        t0, t1 = settle(2.0)
        assert len(w.window("labels", t0, t1)) >= NEARLY * len(w.published("rgb", t0, t1))
        assert all("lidar" not in i["modalities"] for i in w.window("info", t0, t1))

        # 3. LiDAR back: alive again and in the frames.
        t_start = w.send("start lidar")
        w.wait_for(
            lambda e: e["ev"] == "diag" and sensor(e, "lidar")["state"] == "alive", 3, t_start
        )
        w.wait_for(lambda e: e["ev"] == "info" and "lidar" in e["modalities"], 3, t_start)

        # 4. The camera stops: depth anchors (its stamp on the labels), frames go on, still on
        # the RGB camera's grid and frame (one output camera).
        t_stop = w.send("stop rgb")
        switched = w.wait_for(
            lambda e: e["ev"] == "info" and e["anchor"] == "depth",
            RGB_TIMEOUT_S + MARGIN_S + 1,
            t_stop,
        )
        assert switched["t"] - t_stop <= RGB_TIMEOUT_S + MARGIN_S
        t0, t1 = settle(2.0)
        labels = w.window("labels", t0, t1)
        assert len(labels) >= NEARLY * len(w.published("depth", t0, t1))
        assert {(e["frame_id"], e["w"], e["h"]) for e in labels} == {("camera_rgb", 160, 120)}
        assert {e["stamp"] for e in labels} <= set(w.published("depth", t0 - 0.5, t1))
        cams = w.window("camera_info", t0 - 0.5, t1 + 0.5)  # same header as the labels
        assert {(c["frame_id"], c["w"], c["h"]) for c in cams} == {("camera_rgb", 160, 120)}
        assert {e["stamp"] for e in labels} <= {c["stamp"] for c in cams}
        assert all(
            "rgb" not in i["modalities"] and i["anchor"] == "depth"
            for i in w.window("info", t0, t1)
        )

        # 5. The camera is back: it takes over again.
        t_start = w.send("start rgb")
        back = w.wait_for(lambda e: e["ev"] == "info" and e["anchor"] == "rgb", 3, t_start)
        assert back["t"] - t_start < 2.0

        # 6. Malformed messages are counted per sensor and reason; the node keeps going.
        t_bad = time.monotonic()
        for kind in (
            "rgb_encoding",
            "rgb_short",
            "rgb_step",
            "depth_nonfinite",
            "lidar_empty",
            "lidar_no_z",
            "lidar_layout",
        ):
            w.send(f"bad {kind}")
        expected = {
            "rgb": ("encoding", "data_size", "step"),
            "lidar": ("empty_cloud", "missing_field", "field_layout"),
        }

        def counted(e):
            return e["ev"] == "diag" and all(
                int(sensor(e, m).get(f"decode_error.{r}", 0)) >= 1
                for m, rs in expected.items()
                for r in rs
            )

        diag = w.wait_for(counted, 5, t_bad)
        assert int(sensor(diag, "depth")["decode_errors"]) == 0  # NaN/Inf depth is valid (REP 118)
        assert sensor(diag, "segmentation")["inference_errors"] == "0"
        t0, t1 = settle(1.5)
        assert len(w.window("labels", t0, t1)) >= NEARLY * len(w.published("rgb", t0, t1))
        assert node.poll() is None

        # 7. Ctrl-C: a clean exit.
        node.send_signal(signal.SIGINT)
        assert node.wait(15) == 0
    log = (tmp_path / "node.log").read_text()
    assert "Traceback" not in log, log
    for line in (
        "sensor lidar: alive -> stale",
        "anchor: rgb -> depth",
        "anchor: depth -> rgb",
        "lidar_projection compiled",  # the startup line: numba's loops, not the torch passes
    ):
        assert line in log, log


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"checkpoint": "no/such/model.pt"}, "does not exist"),
        ({"slop_ms": -1.0}, "'slop_ms' = -1.0"),
        ({"modalities": ["rgb", "sonar"]}, "'modalities'"),
        ({"lidar_extrinsic": []}, "lidar is enabled"),
        # A misspelled name under the node's own key (rclpy alone would ignore it).
        ({"slop_msx": 10.0}, "unknown parameter of anyseg_node; did you mean 'slop_ms'?"),
        # 1e-7 ms rounded to 0 ns and ended in a traceback.
        ({"slop_ms": 1e-7}, "between 0.001 ms (1 us)"),
        ({"lidar_extrinsic": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]}, "double_array"),
    ],
)
def test_startup_errors_exit_with_one_clear_line(tmp_path, tiny_checkpoint, params, fragment):
    values = {
        "checkpoint": str(tiny_checkpoint),
        "device": "cpu",
        "lidar_extrinsic": LIDAR_TO_CAMERA,
        **params,
    }
    if values["lidar_extrinsic"] == []:
        del values["lidar_extrinsic"]
    r = subprocess.run(
        node_command(write_params(tmp_path / "p.yaml", values)),
        env=loopback_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert r.returncode == 2, r.stderr
    assert (
        len(lines) == 1 and lines[0].startswith("anyseg_node: error:") and fragment in lines[0]
    ), lines


def test_a_misspelled_p_override_exits_with_one_line(tmp_path, tiny_checkpoint):
    params = write_params(
        tmp_path / "p.yaml",
        {"checkpoint": str(tiny_checkpoint), "device": "cpu", "lidar_extrinsic": LIDAR_TO_CAMERA},
    )
    r = subprocess.run(
        [*node_command(params), "-p", "wait_msec:=20.0"],
        env=loopback_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, lines
    assert (
        "'wait_msec' = 20.0: unknown parameter of anyseg_node; did you mean 'wait_ms'?" in lines[0]
    )


def test_checkpoint_that_does_not_fit_the_inputs(tmp_path):
    from anyseg_model import create_model, save_checkpoint

    ckpt = tmp_path / "rgb_depth.pt"
    save_checkpoint(create_model("anyseg_tiny", num_classes=25, modalities=("rgb", "depth")), ckpt)
    values = {"checkpoint": str(ckpt), "device": "cpu", "lidar_extrinsic": LIDAR_TO_CAMERA}
    params = write_params(tmp_path / "p.yaml", values)
    r = subprocess.run(
        node_command(params), env=loopback_env(), capture_output=True, text=True, timeout=120
    )
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, lines
    assert "supports modalities ['rgb', 'depth']" in lines[0] and "['event', 'lidar']" in lines[0]


@pytest.mark.parametrize("defect", ["flat palette", "code"])
def test_a_malformed_checkpoint_stops_the_node_with_one_line(tmp_path, tiny_checkpoint, defect):
    """Issue 14 item 7: each such checkpoint ended in a traceback with exit 1."""
    import torch

    from anyseg_model.checkpoint import read_checkpoint

    data = read_checkpoint(tiny_checkpoint)
    if defect == "flat palette":
        data["palette"] = [v for c in data["palette"] for v in c]
    else:
        data["meta"] = {"x": _System("true")}
    ckpt = tmp_path / "bad.pt"
    torch.save(data, ckpt)
    values = {"checkpoint": str(ckpt), "device": "cpu", "lidar_extrinsic": LIDAR_TO_CAMERA}
    params = write_params(tmp_path / "p.yaml", values)
    r = subprocess.run(
        node_command(params), env=loopback_env(), capture_output=True, text=True, timeout=120
    )
    lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, lines
    expected = "palette" if defect == "flat palette" else "carries code"
    assert str(ckpt) in lines[0] and expected in lines[0], lines


class _System:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        import os

        return (os.system, (self.cmd,))


def test_large_images_cross_processes_with_the_loopback_profile():
    """640x480 rgb8 at 30 Hz, best effort, between two processes: the Fast DDS profile's shared
    memory segment and socket buffers make it (nearly) lossless; defaults lose most of them."""
    env = loopback_env()
    listen = rig_command("--listen")
    talk = rig_command("--rates", "rgb=30", "--width", "640", "--height", "480")
    with child(listen, env, stdout=subprocess.PIPE, text=True) as lp:
        listener = Watcher(lp)
        listener.wait_for(lambda e: e["ev"] == "ready", 30)
        with child(talk, env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as tp:
            talker = Watcher(tp)
            listener.wait_for(lambda e: e["ev"] == "image", 30)  # discovered
            t0, t1 = settle(3.0)
            time.sleep(0.3)
    sent = talker.published("rgb", t0, t1)
    got = {e["stamp"] for e in listener.window("image", t0, t1 + 0.3)}
    assert len(sent) >= 60
    assert len(got & set(sent)) >= 0.95 * len(sent), (len(got & set(sent)), len(sent))
    assert {e["bytes"] for e in listener.window("image", t0, t1)} == {640 * 480 * 3}


def test_namespace_sim_time_latched_camera_info_and_live_parameters(
    tmp_path, tiny_checkpoint, ros_client, monkeypatch
):
    """As a robot would run it: `ros2 launch anyseg_ros segment.launch.py namespace:=robot1
    use_sim_time:=true` (the command launch_ros builds from the launch file, with the shipped
    config/segment.yaml and its wildcard key), a camera_info published once and latched, a /**
    key that belongs to other nodes, then parameters changed while it runs."""
    import yaml

    from anyseg_sim import SyntheticWorld, WorldConfig

    shared = tmp_path / "shared.yaml"
    shared.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"gain_of_another_node": 2}}}))
    node_cmd = launch_command(
        monkeypatch, {"namespace": "robot1", "use_sim_time": "true"}, tmp_path
    )
    assert str(REPO / "config" / "segment.yaml") in node_cmd and "__ns:=/robot1" in node_cmd
    node_cmd += ["--params-file", str(shared)]
    node_cmd += ["-p", f"checkpoint:={tiny_checkpoint}", "-p", "device:=cpu"]
    rig_cmd = rig_command("--rates", RATES, "--camera-info", "latched")
    rig_cmd += ["--ros-args", "-r", "__ns:=/robot1"]
    env = loopback_env()
    node_log = (tmp_path / "node.log").open("w")
    with (
        child(node_cmd, env, stdout=node_log, stderr=subprocess.STDOUT) as node,
        child(rig_cmd, env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as rig,
    ):
        w = Watcher(rig, watch=(node,))
        # 1. No /clock yet: /diagnostics still comes (steady timer) and says why nothing else.
        waiting = w.wait_for(
            lambda e: (
                e["ev"] == "diag"
                and "ROS clock not running" in sensor(e, "segmentation")["message"]
                and int(sensor(e, "segmentation")["held_back"]) > 0
            ),
            timeout=90,
        )
        assert sensor(waiting, "segmentation")["level"] == 1  # WARN
        assert not w.window("labels", 0, time.monotonic())

        # 2. The simulator's clock starts: labels on /robot1/segmentation/labels.
        t_clock = time.monotonic()
        ros_client.start_clock()
        w.wait_for(lambda e: e["ev"] == "labels", timeout=30, after=t_clock)
        settle(1.0)
        t0, t1 = settle(2.0)
        assert len(w.window("labels", t0, t1)) >= NEARLY * len(w.published("rgb", t0, t1))
        # The latched camera_info reached the node: LiDAR is projected, the output camera has K.
        assert w.window("points", t0, t1)
        cams = w.window("camera_info", t0, t1)
        K = SyntheticWorld(WorldConfig(width=160, height=120, seed=0)).camera_info.K
        assert cams and {(c["frame_id"], c["w"], c["h"]) for c in cams} == {
            ("camera_rgb", 160, 120)
        }
        assert all(np.allclose(c["k"], K.reshape(-1)) for c in cams)

        # 3. Parameters at runtime: invalid ones refused with the reason, valid ones applied.
        from rcl_interfaces.msg import ParameterType as T
        from rcl_interfaces.srv import DescribeParameters

        fqn = "/robot1/anyseg_node"
        names = ["lidar_extrinsic", "palette", "modalities", "checkpoint", "slop_ms"]
        described = ros_client.call(
            DescribeParameters,
            f"{fqn}/describe_parameters",
            DescribeParameters.Request(names=names),
        ).descriptors
        # Arrays declared with their real types (an empty default used to become a byte array).
        assert [d.type for d in described[:3]] == [
            T.PARAMETER_DOUBLE_ARRAY,
            T.PARAMETER_INTEGER_ARRAY,
            T.PARAMETER_STRING_ARRAY,
        ]
        assert described[3].read_only and not described[4].read_only
        (bad,) = ros_client.set_parameters(fqn, slop_ms="not a number")
        assert not bad.successful and "'slop_ms'" in bad.reason and "number" in bad.reason
        (tiny,) = ros_client.set_parameters(fqn, slop_ms=1e-7)
        assert not tiny.successful and "1 us" in tiny.reason
        (fixed,) = ros_client.set_parameters(fqn, checkpoint="other.pt")
        assert not fixed.successful and "read-only" in fixed.reason
        t_set = time.monotonic()
        (ok,) = ros_client.set_parameters(fqn, **{"lidar.timeout_ms": 800.0})
        assert ok.successful, ok.reason
        w.wait_for(
            lambda e: e["ev"] == "diag" and sensor(e, "lidar")["timeout_ms"] == "800",
            timeout=5,
            after=t_set,
        )
        t0, t1 = settle(1.0)
        assert len(w.window("labels", t0, t1)) >= NEARLY * len(w.published("rgb", t0, t1))

        node.send_signal(signal.SIGINT)
        assert node.wait(15) == 0
    log = (tmp_path / "node.log").read_text()
    assert "Traceback" not in log, log
    assert log.count("ignoring parameters ['gain_of_another_node']") == 1, log
    assert log.count("the ROS clock reads 0") == 1, log


class _Stopped:
    """A node stand-in for ``run``: records whether it was closed and destroyed."""

    closed = destroyed = False

    def close(self) -> None:
        self.closed = True

    def destroy_node(self) -> None:
        self.destroyed = True


@pytest.mark.parametrize("signalled", [True, False])
def test_a_wait_set_refused_by_a_signalled_shutdown_is_a_clean_exit(monkeypatch, signalled):
    """SIGTERM can shut the context down between the executor's check and its next wait set:
    rclpy then raises RCLError, which is a shutdown, not a crash. With the context still valid
    the same error is a real one and is raised."""
    import rclpy
    from rclpy.impl.implementation_singleton import rclpy_implementation

    from anyseg_ros.node import run

    for k, v in loopback_env().items():
        monkeypatch.setenv(k, v)
    node = _Stopped()

    def spin(_node) -> None:
        if signalled:
            rclpy.shutdown()
        raise rclpy_implementation.RCLError("failed to initialize wait set: context not valid")

    if signalled:
        assert run("anyseg_node", lambda argv: node, [], spin=spin) == 0
    else:
        with pytest.raises(rclpy_implementation.RCLError):
            run("anyseg_node", lambda argv: node, [], spin=spin)
    assert node.closed and node.destroyed and not rclpy.ok()
