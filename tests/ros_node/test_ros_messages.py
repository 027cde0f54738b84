"""The output messages hand the node's buffers to rclpy without copying them."""

from __future__ import annotations

import numpy as np
from std_msgs.msg import Header

from anyseg_ros import messages
from anyseg_ros.core.decode import build_image, build_pointcloud


def test_image_and_cloud_keep_their_buffer() -> None:
    header = Header(frame_id="camera")
    contents = build_image(np.arange(12, dtype=np.uint8).reshape(3, 4), "mono8")
    img = messages.image(header, contents)
    assert img.data is contents["data"]
    assert (img.height, img.width, img.step, img.encoding) == (3, 4, 4, "mono8")
    cloud = build_pointcloud(np.ones((5, 4), np.float32))
    msg = messages.pointcloud(header, cloud)
    assert msg.data is cloud["data"]
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity"]
    assert msg.header.frame_id == "camera"


def test_other_buffers_are_copied_once() -> None:
    contents = {**build_image(np.zeros((2, 2), np.uint8), "mono8"), "data": bytes(range(4))}
    img = messages.image(Header(), contents)
    assert img.data.tolist() == [0, 1, 2, 3]
