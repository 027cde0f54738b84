"""Pipeline inputs without rclpy: transports, event slices, tf extrinsic, registration, scale."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros.core.decode import build_image
from anyseg_ros.core.events import Evt3Encoder
from anyseg_ros.core.settings import InputSettings
from anyseg_ros.core.sync import FrameSet
from anyseg_ros.core.tf import OPTICAL_IN_BODY
from anyseg_ros.pipeline import Pipeline, Sample, input_topics

W, H = 40, 30
T0 = 1_700_000_000 * 10**9


def header(ns, frame):
    return NS(stamp=NS(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame)


def info(frame, f=20.0, w=W, h=H, cx=None):
    return NS(
        header=header(T0, frame),
        k=[f, 0, cx or w / 2, 0, f, h / 2, 0, 0, 1],
        d=[],
        width=w,
        height=h,
        distortion_model="plumb_bob",
    )


def tfm(parent, child, t, q=(0, 0, 0, 1)):
    return NS(
        transforms=[
            NS(
                header=header(0, parent),
                child_frame_id=child,
                transform=NS(
                    translation=NS(x=t[0], y=t[1], z=t[2]),
                    rotation=NS(x=q[0], y=q[1], z=q[2], w=q[3]),
                ),
            )
        ]
    )


def inputs(**kw) -> InputSettings:
    return InputSettings.from_parameters(kw)


def test_subscriptions_follow_the_transport_and_format():
    s = inputs(
        **{
            "rgb.transport": "compressed",
            "depth.transport": "compressedDepth",
            "event.format": "event_packet",
        }
    )
    topics = {
        (t.kind, t.topic, t.msgtype) for t in input_topics(s, ("rgb", "depth", "event", "lidar"))
    }
    assert ("sensor", "rgb/image/compressed", "sensor_msgs/msg/CompressedImage") in topics
    assert ("sensor", "depth/image/compressedDepth", "sensor_msgs/msg/CompressedImage") in topics
    assert ("sensor", "event/events", "event_camera_msgs/msg/EventPacket") in topics
    assert {
        ("camera_info", f"{m}/camera_info", "sensor_msgs/msg/CameraInfo")
        for m in ("rgb", "depth", "event")
    } <= topics
    assert ("tf_static", "/tf_static", "tf2_msgs/msg/TFMessage") in topics
    plain = input_topics(
        inputs(
            lidar_extrinsic=list(np.eye(4).ravel()),
            **{"depth.registered": True, "event.registered": True},
        ),
        ("rgb", "depth", "event", "lidar"),
    )
    assert not any(t.kind.startswith("tf") for t in plain)  # nothing needs tf


def test_lidar_extrinsic_from_tf_and_the_intensity_scale():
    pipe = Pipeline(
        inputs(**{"lidar.intensity_field": "reflectivity", "lidar.max_intensity": 255.0}),
        [],
        model_max_intensity=1.0,
    )
    pipe.set_camera_info(info("cam_optical"))
    pipe.add_tf(tfm("base_link", "cam_link", (1, 0, 1)), static=True)
    pipe.add_tf(tfm("cam_link", "cam_optical", (0, 0, 0), OPTICAL_IN_BODY), static=True)
    pipe.add_tf(tfm("base_link", "os_lidar", (0, 0, 1)), static=True)
    dt = np.dtype(
        {
            "names": ["x", "y", "z", "reflectivity"],
            "formats": ["<f4"] * 3 + ["<u2"],
            "offsets": [0, 4, 8, 12],
            "itemsize": 16,
        }
    )
    rec = np.zeros(2, dt)
    rec["x"], rec["reflectivity"] = [11.0, 21.0], [51, 255]
    fields = [
        NS(name=n, offset=o, datatype=d, count=1)
        for n, o, d in (("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("reflectivity", 12, 4))
    ]
    cloud = NS(
        header=header(T0, "os_lidar"),
        height=1,
        width=2,
        fields=fields,
        is_bigendian=False,
        point_step=16,
        row_step=32,
        data=rec.tobytes(),
        is_dense=True,
    )
    stamp, sample = pipe.decode("lidar", cloud)
    np.testing.assert_allclose(sample.data[:, 3], [0.2, 1.0], rtol=1e-6)
    scan = pipe.arrays(FrameSet(stamp, "lidar", {"lidar": (stamp, sample)}))["lidar"]
    # 10 m and 20 m straight ahead of the camera, which sits 1 m ahead of the LiDAR.
    np.testing.assert_allclose(
        scan.points[:, :3] @ scan.extrinsic[:3, :3].T + scan.extrinsic[:3, 3],
        [[0, 0, 10], [0, 0, 20]],
        atol=1e-6,
    )
    assert pipe.extrinsic_source == "tf os_lidar -> cam_optical"
    assert ("lidar_extrinsic_source", "tf os_lidar -> cam_optical") in pipe.input_status()
    # A frame tf does not know: left out, counted, said once naming both frames.
    cloud.header = header(T0, "velodyne")
    stamp, sample = pipe.decode("lidar", cloud)
    assert "lidar" not in pipe.arrays(FrameSet(stamp, "lidar", {"lidar": (stamp, sample)}))
    assert pipe.error_counts()["lidar/no_transform"] == 1
    assert any("'velodyne' to 'cam_optical'" in n for n in pipe.take_notes())


def depth_frame(mm, frame):
    return Sample(header(T0, frame), mm)


def test_depth_is_registered_onto_the_rgb_grid_with_both_intrinsics_and_tf():
    pipe = Pipeline(inputs(), [])
    pipe.set_camera_info(info("rgb_optical", f=20.0))
    pipe.set_camera_info(info("depth_optical", f=20.0, cx=W / 2 - 2), "depth")
    # The depth camera sits 0.1 m to the right of the RGB camera (optical x).
    pipe.add_tf(tfm("rgb_optical", "depth_optical", (0.1, 0, 0)), static=True)
    mm = np.full((H, W), 2000, np.uint16)  # a wall 2 m away
    fs = FrameSet(T0, "depth", {"depth": (T0, depth_frame(mm, "depth_optical"))})
    reg = pipe.arrays(fs)["depth"]
    assert reg.shape == (H, W) and reg.dtype == np.float32
    hit = reg > 0
    np.testing.assert_allclose(reg[hit], 2.0, atol=1e-6)
    # Moved by f * 0.1 / 2 = 1 px for the baseline and 2 px for the principal points: RGB
    # columns 0..2 see beyond the depth camera's left edge, every other pixel gets its depth.
    assert not hit[:, :3].any() and hit[:, 3:].all()


def test_unregistrable_inputs_are_refused_once_with_a_reason():
    pipe = Pipeline(inputs(), [])
    pipe.set_camera_info(info("rgb_optical"))
    mm = np.full((H, W), 1000, np.uint16)
    fs = FrameSet(T0, "depth", {"depth": (T0, depth_frame(mm, "depth_optical"))})
    assert "depth" not in pipe.arrays(fs)  # another frame and no depth/camera_info
    pipe.set_camera_info(info("depth_optical"), "depth")
    assert "depth" not in pipe.arrays(fs)  # camera_info, but no tf between them
    assert pipe.error_counts() == {"depth/no_camera_info": 1, "depth/no_transform": 1}
    notes = pipe.take_notes()
    assert len(notes) == 2 and "depth.registered" in notes[0]
    # depth.registered: true keeps it as it is, warning once that the frames differ.
    pipe = Pipeline(inputs(**{"depth.registered": True}), [])
    pipe.set_camera_info(info("rgb_optical"))
    for _ in range(3):
        assert pipe.arrays(fs)["depth"] is mm
    assert len(pipe.take_notes()) == 1
    # Same frame, same intrinsics: nothing to do.
    pipe = Pipeline(inputs(), [])
    pipe.set_camera_info(info("cam"))
    pipe.set_camera_info(info("cam", w=W * 2, h=H * 2, f=40.0), "depth")
    same = FrameSet(
        T0, "depth", {"depth": (T0, depth_frame(np.ones((2 * H, 2 * W), np.uint16), "cam"))}
    )
    assert pipe.arrays(same)["depth"].shape == (2 * H, 2 * W)


def test_events_with_other_intrinsics_are_warped_and_a_translated_event_camera_refused():
    pipe = Pipeline(inputs(), [])
    pipe.set_camera_info(info("rgb"))
    pipe.set_camera_info(info("event", cx=W / 2 + 3), "event")  # principal point 3 px right
    pipe.add_tf(tfm("rgb", "event", (0, 0, 0)), static=True)
    ev = np.full((H, W), 128, np.uint8)
    ev[10, 23] = 131
    fs = FrameSet(T0, "event", {"event": (T0, Sample(header(T0, "event"), ev))})
    out = pipe.arrays(fs)["event"]
    assert out[10, 20] == 131 and (out == 128).sum() == W * H - 1
    pipe.add_tf(tfm("rgb", "event2", (0.05, 0, 0)), static=True)
    pipe.set_camera_info(info("event2"), "event")
    fs = FrameSet(T0, "event", {"event": (T0, Sample(header(T0, "event2"), ev))})
    assert "event" not in pipe.arrays(fs) and pipe.error_counts() == {"event/not_registered": 1}


def test_event_packets_become_slices_and_frames_end_at_the_frame_sets_stamp():
    s = inputs(**{"event.format": "event_packet", "event.window_ms": 20.0, "slop_ms": 10.0})
    pipe = Pipeline(s, [])
    enc = Evt3Encoder()
    out = []
    for k in range(20):  # 2 ms packets, one ON event at (3, 4) per packet
        t = np.array([1_000_000 + k * 2000 + 1000])
        words = enc.encode(t, [3], [4], [1], end_us=1_000_000 + (k + 1) * 2000)
        msg = NS(
            header=header(T0 + k * 2_000_000 + 1_000_000, "event"),
            width=W,
            height=H,
            seq=k,
            time_base=0,
            encoding="evt3",
            is_bigendian=False,
            events=words.tobytes(),
        )
        out.append(pipe.decode("event", msg))
    slices = [o for o in out if o is not None]
    assert 3 <= len(slices) <= 5  # one per slop (10 ms) of stream time
    assert all(b[0] - a[0] >= 10_000_000 for a, b in zip(slices, slices[1:], strict=False))
    stamp, sample = slices[-1]
    assert sample.data is None
    frame = pipe.arrays(FrameSet(stamp, "event", {"event": (stamp, sample)}))["event"]
    assert frame.dtype == np.int16 and frame[4, 3] == 10  # 20 ms of 2 ms packets


def test_compressed_transports_through_decode():
    from anyseg_ros import transport

    s = inputs(**{"rgb.transport": "compressed", "depth.transport": "compressedDepth"})
    pipe = Pipeline(s, [])
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :, 0] = 200
    fmt, data = transport.encode_compressed(img, "png")
    _, rgb = pipe.decode("rgb", NS(header=header(T0, "c"), format=fmt, data=data))
    np.testing.assert_array_equal(rgb.data, img)
    fmt, data = transport.encode_compressed_depth(np.full((H, W), 1234, np.uint16), "rvl")
    _, depth = pipe.decode("depth", NS(header=header(T0, "c"), format=fmt, data=data))
    assert (depth.data == 1234).all()
    raw = NS(header=header(T0, "c"), **build_image(img, "rgb8"))
    with pytest.raises(AttributeError):  # a raw Image on the compressed topic has no format
        pipe.decode("rgb", raw)


def test_camera_models_reach_the_lidar_projection():
    """The camera_info's distortion model and all its coefficients go into the LidarScan the
    model's projection uses (equidistant, 8-coefficient rational, plumb_bob)."""
    pipe = Pipeline(inputs(lidar_extrinsic=list(np.eye(4).ravel())), [])
    fisheye = info("cam")
    fisheye.distortion_model, fisheye.d = "equidistant", [0.1, 0.01, 0.0, 0.0]
    pipe.set_camera_info(fisheye)
    cloud = NS(
        header=header(T0, "lidar"),
        height=1,
        width=1,
        is_bigendian=False,
        point_step=12,
        row_step=12,
        data=np.array([0.1, 0.0, 5.0], "<f4").tobytes(),
        is_dense=True,
        fields=[NS(name=n, offset=4 * i, datatype=7, count=1) for i, n in enumerate("xyz")],
    )
    stamp, sample = pipe.decode("lidar", cloud)
    fs = FrameSet(stamp, "lidar", {"lidar": (stamp, sample)})
    scan = pipe.arrays(fs)["lidar"]
    assert scan.distortion_model == "equidistant"
    np.testing.assert_array_equal(scan.distortion, [0.1, 0.01, 0.0, 0.0])
    rational = info("cam")
    rational.distortion_model = "rational_polynomial"
    rational.d = [0.1, 0.01, 0.0, 0.0, 0.001, 0.05, 0.0, 0.0]
    pipe.set_camera_info(rational)
    scan = pipe.arrays(fs)["lidar"]
    assert scan.distortion_model == "rational_polynomial" and len(scan.distortion) == 8
    pipe.set_camera_info(info("cam"))  # plumb_bob, no distortion
    assert pipe.arrays(fs)["lidar"].distortion is None
    assert pipe.error_counts() == {}


def test_live_subscriptions_with_a_stand_in_node(monkeypatch):
    """What the node subscribes to, with which QoS; packages without wheels: tf is skipped
    (LiDAR then needs a parameter), an event packet format without its package is one line."""
    from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

    from anyseg_ros import subscriptions
    from anyseg_ros.pipeline import StartupError

    made = []

    class StandIn:
        def create_subscription(self, cls, topic, callback, qos):
            made.append((cls.__name__, topic, qos))
            return NS(topic_name="/" + topic.lstrip("/"))

    s = inputs(**{"rgb.transport": "compressed"})
    pipe = Pipeline(s, [])
    seen = []
    topics, subs, cameras = subscriptions.subscribe(
        StandIn(),
        pipe,
        ("rgb", "depth", "lidar"),
        lambda m, msg: seen.append(m),
        lambda m, msg: None,
    )
    assert topics == {
        "rgb": "/rgb/image/compressed",
        "depth": "/depth/image",
        "lidar": "/lidar/points",
    }
    assert cameras == {"rgb": "/rgb/camera_info", "depth": "/depth/camera_info"}
    assert len(subs) == len(made)
    names = {(c, t) for c, t, _ in made}
    assert ("CompressedImage", "rgb/image/compressed") in names and (
        "CameraInfo",
        "depth/camera_info",
    ) in names
    assert not any(t.startswith("/tf") for _, t, _ in made)  # no tf2_msgs here: skipped

    class TFMessage:  # a stand-in with tf2_msgs' interface
        pass

    real = subscriptions.message_type
    monkeypatch.setattr(
        subscriptions,
        "message_type",
        lambda t: TFMessage if t == "tf2_msgs/msg/TFMessage" else real(t),
    )
    made.clear()
    subscriptions.subscribe(
        StandIn(), pipe, ("rgb", "lidar"), lambda m, msg: None, lambda m, msg: None
    )
    qos = {t: q for _, t, q in made}
    assert qos["/tf_static"].durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert qos["/tf"].reliability == ReliabilityPolicy.RELIABLE
    assert subscriptions.tf_available()
    monkeypatch.undo()
    with pytest.raises(
        StartupError, match="event_camera_msgs/msg/EventPacket, which is not installed"
    ):
        subscriptions.subscribe(
            StandIn(),
            Pipeline(inputs(**{"event.format": "event_packet"}), []),
            ("event",),
            lambda m, msg: None,
            lambda m, msg: None,
        )
