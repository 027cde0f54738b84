"""The bag writer: readable with rosbags, decodable into rclpy messages with correct fields,
realistic rates and stamps, deterministic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from anyseg_sim import SyntheticWorld, WorldConfig
from anyseg_sim.bag_writer import SCHEDULES, START_NS, stamps, write_bag

W, H, FRAMES = 96, 64, 12
TOPICS = {
    "/rgb/image",
    "/rgb/camera_info",
    "/depth/image",
    "/event/image",
    "/lidar/points",
    "/ground_truth/labels",
}


def new_world() -> SyntheticWorld:
    return SyntheticWorld(WorldConfig(width=W, height=H, seed=21, lidar_columns=256))


@pytest.fixture(scope="module")
def mcap_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bags") / "drive"
    write_bag(path, new_world(), frames=FRAMES, condition="rain")
    return path


def stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def read_all(path: Path) -> dict[str, list[tuple[int, bytes]]]:
    out: dict[str, list[tuple[int, bytes]]] = {}
    with AnyReader([path]) as reader:
        for conn, log_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((log_ns, bytes(raw), conn.msgtype))
    return out


def test_topics_rates_and_stamps(mcap_bag):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    msgs = read_all(mcap_bag)
    assert set(msgs) == TOPICS
    types = {
        "/rgb/image": Image,
        "/rgb/camera_info": CameraInfo,
        "/depth/image": Image,
        "/event/image": Image,
        "/lidar/points": PointCloud2,
        "/ground_truth/labels": Image,
    }
    decoded = {t: [deserialize_message(raw, types[t]) for _, raw, _ in msgs[t]] for t in TOPICS}
    duration = FRAMES / 20.0
    for sensor, sch in SCHEDULES.items():
        ms = decoded[sch.topic]
        assert len(ms) == round(duration * sch.rate_hz), sensor
        s = np.array([stamp(m) for m in ms])
        period = np.diff(s) / 1e9
        assert abs(np.median(period) - 1 / sch.rate_hz) < 1e-3, sensor
        assert period.std() > 0  # jittered, but only a little:
        assert np.abs(period - 1 / sch.rate_hz).max() <= 4e-3 + 1e-6
        logs = np.array([log for log, _, _ in msgs[sch.topic]])
        assert np.all(logs > s) and np.all(logs - s < 50_000_000)  # logged after capture
    for m in decoded["/lidar/points"]:
        assert m.header.frame_id == "lidar"
    for t in TOPICS - {"/lidar/points"}:
        assert all(m.header.frame_id == "camera_optical" for m in decoded[t]), t
    # Labels and camera info carry the stamp of the image they belong to.
    rgb_stamps = [stamp(m) for m in decoded["/rgb/image"]]
    assert [stamp(m) for m in decoded["/ground_truth/labels"]] == rgb_stamps
    assert [stamp(m) for m in decoded["/rgb/camera_info"]] == rgb_stamps
    # Everything is logged in time order.
    with AnyReader([mcap_bag]) as reader:
        logs = [log for _, log, _ in reader.messages()]
    assert logs == sorted(logs)


def test_message_fields_decode_to_the_rendered_data(mcap_bag):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField

    world = new_world()
    msgs = read_all(mcap_bag)
    t_rgb = stamps(world, "rgb", FRAMES / 20.0)[:FRAMES]
    k = 3
    rgb_msg = deserialize_message(msgs["/rgb/image"][k][1], Image)
    rgb, labels = world.camera(t_rgb[k], "rain")
    assert (
        rgb_msg.encoding,
        rgb_msg.height,
        rgb_msg.width,
        rgb_msg.step,
        rgb_msg.is_bigendian,
    ) == ("rgb8", H, W, 3 * W, 0)
    np.testing.assert_array_equal(
        np.frombuffer(bytes(rgb_msg.data), np.uint8).reshape(H, W, 3), rgb
    )
    lab_msg = deserialize_message(msgs["/ground_truth/labels"][k][1], Image)
    assert (lab_msg.encoding, lab_msg.step) == ("mono8", W)
    np.testing.assert_array_equal(
        np.frombuffer(bytes(lab_msg.data), np.uint8).reshape(H, W), labels
    )
    assert rgb_msg.header.stamp.sec * 10**9 + rgb_msg.header.stamp.nanosec == START_NS + round(
        t_rgb[k] * 1e9
    )

    info = deserialize_message(msgs["/rgb/camera_info"][k][1], CameraInfo)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), world.camera_info.K)
    np.testing.assert_allclose(np.array(info.p).reshape(3, 4), world.camera_info.P)
    assert (
        info.distortion_model == "plumb_bob"
        and len(info.d) == 5
        and (info.width, info.height) == (W, H)
    )

    t_depth = stamps(world, "depth", FRAMES / 20.0)
    d_msg = deserialize_message(msgs["/depth/image"][2][1], Image)
    assert (d_msg.encoding, d_msg.step) == ("16UC1", 2 * W)
    mm = np.frombuffer(bytes(d_msg.data), "<u2").reshape(H, W)
    d = world.depth(t_depth[2], "rain")
    expect = np.round(d.astype(np.float64) * 1000)
    np.testing.assert_array_equal(mm, np.where(expect <= 65535, expect, 0))

    t_ev = stamps(world, "event", FRAMES / 20.0)
    e_msg = deserialize_message(msgs["/event/image"][4][1], Image)
    assert e_msg.encoding == "mono8"
    ev = np.frombuffer(bytes(e_msg.data), np.uint8).reshape(H, W)
    np.testing.assert_array_equal(
        ev, world.events(t_ev[3], t_ev[4], "rain")
    )  # since the previous frame

    t_l = stamps(world, "lidar", FRAMES / 20.0)
    pc = deserialize_message(msgs["/lidar/points"][1][1], PointCloud2)
    assert [(f.name, f.offset, f.datatype, f.count) for f in pc.fields] == [
        (n, 4 * i, PointField.FLOAT32, 1) for i, n in enumerate(["x", "y", "z", "intensity"])
    ]
    assert (pc.point_step, pc.height, pc.is_bigendian) == (
        16,
        1,
        False,
    ) and pc.row_step == 16 * pc.width
    pts = np.frombuffer(bytes(pc.data), "<f4").reshape(-1, 4)
    np.testing.assert_array_equal(pts, world.lidar(t_l[1], "rain")[0])


def test_sqlite3_storage_and_float_depth(tmp_path):
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    path = tmp_path / "float_depth"
    world = new_world()
    counts = write_bag(path, world, frames=4, storage="sqlite3", depth_encoding="32FC1")
    assert list(path.glob("*.db3")) and counts["/rgb/image"] == 4
    msgs = read_all(path)
    m = deserialize_message(msgs["/depth/image"][0][1], Image)
    assert (m.encoding, m.step) == ("32FC1", 4 * W)
    depth = np.frombuffer(bytes(m.data), "<f4").reshape(H, W)
    expect = world.depth(stamps(world, "depth", 0.2)[0])
    np.testing.assert_array_equal(np.isnan(depth), expect == 0)  # REP 118: NaN = no measurement
    np.testing.assert_array_equal(depth[expect > 0], expect[expect > 0])


def test_bag_bytes_are_deterministic(mcap_bag, tmp_path):
    again = tmp_path / "drive"
    write_bag(again, new_world(), frames=FRAMES, condition="rain")

    def digest(folder: Path) -> dict[str, str]:
        return {
            f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(folder.iterdir())
        }

    assert digest(mcap_bag) == digest(again)


def test_rejects_bad_options(tmp_path):
    with pytest.raises(ValueError, match="storage"):
        write_bag(tmp_path / "x", new_world(), frames=2, storage="rosbag1")
    with pytest.raises(ValueError, match="depth_encoding"):
        write_bag(tmp_path / "y", new_world(), frames=2, depth_encoding="8UC1")


# ---------------------------------------------------------------- a recording like a robot's

ROBOT_TOPICS = {
    "/rgb/image/compressed": "sensor_msgs/msg/CompressedImage",
    "/depth/image/compressedDepth": "sensor_msgs/msg/CompressedImage",
    "/event/events": "event_camera_msgs/msg/EventPacket",
    "/lidar/points": "sensor_msgs/msg/PointCloud2",
    "/rgb/camera_info": "sensor_msgs/msg/CameraInfo",
    "/depth/camera_info": "sensor_msgs/msg/CameraInfo",
    "/event/camera_info": "sensor_msgs/msg/CameraInfo",
    "/tf_static": "tf2_msgs/msg/TFMessage",
    "/ground_truth/labels": "sensor_msgs/msg/Image",
}


@pytest.fixture(scope="module")
def robot_bag(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bags") / "robot"
    write_bag(path, new_world(), frames=FRAMES, condition="rain", robot=True)
    return path


def test_robot_recording_has_the_drivers_topics_and_decodes_to_the_world(robot_bag):
    from anyseg_ros import transport
    from anyseg_ros.core.decode import decode_camera_info
    from anyseg_ros.core.events import EventStream
    from anyseg_ros.core.pointclouds import decode_cloud
    from anyseg_ros.core.tf import TfTree
    from anyseg_sim.robot_writer import LIDAR_FRAME, RGB_FRAME
    from anyseg_tools.bag import deserialize, read_bag

    bag = read_bag(robot_bag)
    assert bag.topics() == ROBOT_TOPICS
    world = new_world()
    by_topic: dict[str, list] = {}
    for r in bag.records:
        by_topic.setdefault(r.topic, []).append(deserialize(r))
    # The extrinsic from /tf_static is the rig's, through REP 103 optical frames.
    tree = TfTree()
    tree.add_message(by_topic["/tf_static"][0], static=True)
    np.testing.assert_allclose(
        tree.lookup(RGB_FRAME, LIDAR_FRAME), world.rig.T_cam_lidar, atol=1e-9
    )
    cams = [decode_camera_info(m) for m in by_topic["/rgb/camera_info"][:1]]
    assert cams[0].frame_id == RGB_FRAME and (cams[0].width, cams[0].height) == (W, H)
    # Depth: lossless png of the millimetres.
    d = by_topic["/depth/image/compressedDepth"][0]
    t = (stamp(d) - START_NS) / 1e9
    mm = np.round(world.depth(t, "rain").astype(np.float64) * 1000)
    np.testing.assert_array_equal(
        transport.decode_compressed_depth(d), np.where(mm <= 65535, mm, 0)
    )
    # The organised Ouster-like cloud holds the sweep's points, NaN where a beam had no return.
    c = by_topic["/lidar/points"][0]
    cloud = decode_cloud(c)
    assert (c.height, c.width, c.point_step) == (32, 256, 48)
    pts, _ = world.lidar((stamp(c) - START_NS) / 1e9, "rain")
    assert len(cloud.points) == len(pts)
    np.testing.assert_array_equal(np.sort(cloud.points[:, 0]), np.sort(pts[:, 0]))
    # Event packets accumulate back to the world's event frames, whose windows they cover.
    stream = EventStream(max_pixels=W * H)
    for p in by_topic["/event/events"]:
        stream.add_packet(p)
    ts = stamps(world, "event", FRAMES / SCHEDULES["rgb"].rate_hz)
    for a, b in zip(ts[1:-2], ts[2:-1], strict=True):
        got = stream.frame(START_NS + round(b * 1e9), round((b - a) * 1e9))
        want = world.events(a, b, "rain").astype(np.int16) - 128
        assert np.abs(got - want).sum() <= 0.01 * np.abs(want).sum() + 2  # us rounding at ends
