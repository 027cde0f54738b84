"""anyseg-replay: timing, rate, restamping and drop windows, received over real (loopback) DDS."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from anyseg_tools.bag import parse_drop, read_bag
from anyseg_tools.localdds import loopback_env

from .bagtools import image, write_bag

MS = 1_000_000
T0 = 1_600_000_000 * 10**9


@pytest.fixture(scope="module")
def bag(tmp_path_factory):
    """1 s: rgb at 20 Hz, depth at 10 Hz."""
    rgb = np.zeros((24, 32, 3), np.uint8)
    depth = np.ones((24, 32), np.uint16)
    msgs = [
        ("/rgb/image", T0 + i * 50 * MS, image(T0 + i * 50 * MS, rgb, "rgb8")) for i in range(20)
    ]
    msgs += [
        ("/depth/image", T0 + i * 100 * MS + MS, image(T0 + i * 100 * MS, depth, "16UC1"))
        for i in range(10)
    ]
    return write_bag(tmp_path_factory.mktemp("replay") / "bag", msgs)


def test_replay_timing_rate_restamp_and_drops(bag, monkeypatch):
    for k, v in loopback_env().items():
        monkeypatch.setenv(k, v)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from anyseg_tools.replay import Replayer

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        got = {"/rgb/image": [], "/depth/image": []}
        listener = rclpy.create_node("replay_listener", context=ctx)
        for topic in got:
            listener.create_subscription(
                Image,
                topic,
                lambda m, t=topic: got[t].append((time.time_ns(), m)),
                qos_profile_sensor_data,
            )
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(listener)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        player = rclpy.create_node("replay_player", context=ctx)
        replayer = Replayer(player, read_bag(bag), rate=2.0, drops=[parse_drop("depth:0.3-0.6")])
        deadline = time.time() + 10
        while (
            listener.count_publishers("/rgb/image") == 0
            or player.count_subscribers("/rgb/image") == 0
        ):
            assert time.time() < deadline, "discovery did not happen"
            time.sleep(0.05)
        time.sleep(0.3)
        wall0 = time.time_ns()
        stats = replayer.run()
        time.sleep(0.3)
        executor.shutdown()
    finally:
        rclpy.try_shutdown(context=ctx)

    assert stats.published == {"/rgb/image": 20, "/depth/image": 7}
    assert stats.dropped == {"/depth/image": 3}  # 0.3, 0.4, 0.5 s
    rgb = got["/rgb/image"]
    assert len(rgb) == 20 and len(got["/depth/image"]) == 7
    stamps = np.array([m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in rgb])
    # Rate 2: 50 ms of bag time is 25 ms of replay; stamps are shifted onto the wall clock.
    assert np.all(np.abs(np.diff(stamps) - 25 * MS) <= 1000)
    assert abs(stamps[0] - wall0) < 200 * MS
    received = np.array([t for t, _ in rgb])
    assert abs((received[-1] - received[0]) - 19 * 25 * MS) < 150 * MS
    assert np.all(np.abs(received - stamps) < 200 * MS)  # published when due, not in a burst


def test_replay_cli_rejects_bad_arguments(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "anyseg_tools.replay", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        env=loopback_env(),
    )
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "anyseg_tools.replay", str(tmp_path), "--drop", "radar:1-2"],
        capture_output=True,
        text=True,
        timeout=60,
        env=loopback_env(),
    )
    assert r.returncode == 2 and "unknown modality" in r.stderr


def test_replay_with_clock_publishes_bag_time_and_keeps_recorded_stamps(bag, monkeypatch):
    """--clock: /clock carries the bag's log time (ticking between messages, ahead of each
    one), header stamps stay as recorded: what a node with use_sim_time needs."""
    for k, v in loopback_env().items():
        monkeypatch.setenv(k, v)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image

    from anyseg_tools.replay import Replayer

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    clock, rgb = [], []
    try:
        listener = rclpy.create_node("clock_listener", context=ctx)
        ns = lambda t: t.sec * 10**9 + t.nanosec  # noqa: E731
        listener.create_subscription(
            Clock, "/clock", lambda m: clock.append(ns(m.clock)), qos_profile_sensor_data
        )
        listener.create_subscription(
            Image,
            "/rgb/image",
            lambda m: rgb.append((ns(m.header.stamp), clock[-1] if clock else None)),
            qos_profile_sensor_data,
        )
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(listener)
        threading.Thread(target=executor.spin, daemon=True).start()
        player = rclpy.create_node("clock_player", context=ctx)
        replayer = Replayer(player, read_bag(bag), rate=2.0, clock=True)
        # The clock the player had published when it sent each image (DDS does not order
        # messages of two topics at the receiver, so this is checked at the sender).
        sent_at = []
        pub = replayer.publishers["/rgb/image"]
        real_publish = pub.publish
        pub.publish = lambda m: (sent_at.append(replayer.bag_now_ns()), real_publish(m))
        deadline = time.time() + 10
        while (
            player.count_subscribers("/clock") == 0 or player.count_subscribers("/rgb/image") == 0
        ):
            assert time.time() < deadline, "discovery did not happen"
            time.sleep(0.05)
        time.sleep(0.3)
        replayer.run()
        time.sleep(0.3)
        executor.shutdown()
    finally:
        rclpy.try_shutdown(context=ctx)
    assert [s for s, _ in rgb] == [T0 + i * 50 * MS for i in range(20)]  # not restamped
    assert clock == sorted(clock) and clock[0] == T0 and clock[-1] == T0 + 950 * MS
    # Between messages the clock ticks (every 10 ms of wall time = 20 ms of bag time at rate 2).
    assert len(set(clock)) >= 40
    # Each message went out after the clock reached its log time.
    assert sent_at == [T0 + i * 50 * MS for i in range(20)]
    assert replayer.bag_now_ns() == T0 + 950 * MS  # the last message's log time


def test_a_bag_without_leading_slashes_scores_every_frame(tmp_path):
    """Topic names are compared in one normalised form: a recorder that wrote `rgb/image`,
    `rgb/camera_info` and `ground_truth/labels` without the slash is read like any other."""
    from types import SimpleNamespace

    from rosbags.rosbag2 import StoragePlugin, Writer

    from anyseg_ros.core.settings import InputSettings, SyncSettings
    from anyseg_tools.bag import cloud_msg, header_msg, typestore
    from anyseg_tools.scoring import run_offline

    from .bagtools import camera_info

    h, w = 6, 8
    msgs = [("rgb/camera_info", T0, camera_info(T0, w, h))]
    for i in range(10):
        t = T0 + i * 50 * MS
        msgs += [
            ("rgb/image", t + MS, image(t, np.zeros((h, w, 3), np.uint8), "rgb8")),
            ("ground_truth/labels", t + MS, image(t, np.zeros((h, w), np.uint8), "mono8")),
            ("lidar/points", t + 2 * MS, cloud_msg(header_msg(t, "lidar"), np.ones((5, 4)))),
        ]
    store = typestore()
    writer = Writer(tmp_path / "bag", version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conns = {}
    for topic, log_ns, msg in sorted(msgs, key=lambda m: m[1]):
        if topic not in conns:
            conns[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=store)
        writer.write(conns[topic], log_ns, store.serialize_cdr(msg, msg.__msgtype__))
    writer.close()

    bag = read_bag(tmp_path / "bag")
    assert set(bag.topics()) == {
        "/rgb/camera_info",
        "/rgb/image",
        "/ground_truth/labels",
        "/lidar/points",
    }
    values = {"modalities": ["rgb", "lidar"], "lidar_extrinsic": list(np.eye(4).reshape(-1))}

    def predict(arrays):
        return SimpleNamespace(labels=np.zeros((h, w), np.uint8), modalities=tuple(arrays))

    run = run_offline(
        bag,
        predict,
        SyncSettings.from_parameters(values),
        InputSettings.from_parameters(values),
        ["a", "b"],
    )
    assert len(run.frames) == 10 and len(run.scorer.per_frame) == 10
    assert run.decode_errors == {}  # no lidar/no_camera_info: the camera_info was found
    assert all(f.modalities == ("rgb", "lidar") for f in run.frames)
