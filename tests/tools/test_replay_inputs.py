"""Replaying a robot's recording: types this system lacks are left out and named, not a crash."""

import numpy as np

from anyseg_tools.bag import header_msg, typestore
from anyseg_tools.localdds import loopback_env

from .bagtools import image, write_bag

T0 = 1_600_000_000 * 10**9


def test_topics_of_uninstalled_types_are_left_out(tmp_path, monkeypatch):
    for k, v in loopback_env().items():
        monkeypatch.setenv(k, v)
    import rclpy

    from anyseg_tools.bag import read_bag
    from anyseg_tools.replay import Replayer

    packet = typestore().types["event_camera_msgs/msg/EventPacket"](
        header=header_msg(T0, "ev"),
        height=2,
        width=2,
        seq=0,
        time_base=0,
        encoding="evt3",
        is_bigendian=False,
        events=np.zeros(4, np.uint8),
    )
    rgb = image(T0, np.zeros((4, 6, 3), np.uint8), "rgb8")
    bag = read_bag(
        write_bag(tmp_path / "bag", [("/rgb/image", T0, rgb), ("/event/events", T0, packet)])
    )
    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    try:
        node = rclpy.create_node("replay_inputs", context=ctx)
        rep = Replayer(node, bag)
        assert rep.unpublishable == {"/event/events": "event_camera_msgs/msg/EventPacket"}
        assert [topic for topic, *_ in rep.items] == ["/rgb/image"]
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
