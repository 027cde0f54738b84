"""The tf tree: static and dynamic links, chains via the common root, REP 103, clear errors."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros.core.tf import (
    OPTICAL_IN_BODY,
    TfError,
    TfTree,
    matrix_quaternion,
    quaternion_matrix,
)


def ts(parent, child, t, q=(0, 0, 0, 1), stamp=0):
    return NS(
        header=NS(frame_id=parent, stamp=NS(sec=stamp // 10**9, nanosec=stamp % 10**9)),
        child_frame_id=child,
        transform=NS(
            translation=NS(x=t[0], y=t[1], z=t[2]), rotation=NS(x=q[0], y=q[1], z=q[2], w=q[3])
        ),
    )


def test_rep103_optical_frame():
    R = quaternion_matrix(OPTICAL_IN_BODY)
    np.testing.assert_allclose(R @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # optical z = body x
    np.testing.assert_allclose(R @ [1, 0, 0], [0, -1, 0], atol=1e-12)  # optical x = body -y
    np.testing.assert_allclose(R @ [0, 1, 0], [0, 0, -1], atol=1e-12)  # optical y = body -z
    assert matrix_quaternion(R) == pytest.approx(OPTICAL_IN_BODY)


def test_chain_through_the_common_root_from_a_tf_message():
    tree = TfTree()
    msg = NS(
        transforms=[
            ts("base_link", "camera_link", (1.0, 0.0, 1.0)),
            ts("camera_link", "camera_optical", (0, 0, 0), OPTICAL_IN_BODY),
            ts("/base_link", "os_lidar", (0.5, 0.0, 1.5)),  # a leading slash is the same frame
        ]
    )
    assert tree.add_message(msg, static=True) == 3
    T = tree.lookup("camera_optical", "os_lidar")
    # The LiDAR origin sits 0.5 m behind and 0.5 m above the camera: optical (0, -0.5, -0.5).
    np.testing.assert_allclose(T @ [0, 0, 0, 1], [0, -0.5, -0.5, 1], atol=1e-12)
    np.testing.assert_allclose(tree.lookup("os_lidar", "camera_optical"), np.linalg.inv(T))
    np.testing.assert_array_equal(tree.lookup("os_lidar", "os_lidar"), np.eye(4))


def test_missing_frames_name_both():
    tree = TfTree()
    tree.add("base_link", "camera_link", translation=(0, 0, 0), rotation=(0, 0, 0, 1))
    with pytest.raises(TfError, match="'velodyne' to 'camera_link'.*not connected"):
        tree.lookup("camera_link", "velodyne")


def test_dynamic_links_interpolate_and_refuse_extrapolation():
    tree = TfTree()
    s = np.sin(np.pi / 4)
    tree.add(
        "odom", "base_link", translation=(0, 0, 0), rotation=(0, 0, 0, 1), stamp=0, static=False
    )
    tree.add(
        "odom",
        "base_link",
        translation=(2, 0, 0),
        rotation=(0, 0, s, np.cos(np.pi / 4)),
        stamp=10**9,
        static=False,
    )
    T = tree.lookup("odom", "base_link", 5 * 10**8)
    np.testing.assert_allclose(T[:3, 3], [1, 0, 0])
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [np.cos(np.pi / 4), np.sin(np.pi / 4), 0])
    with pytest.raises(TfError, match="outside the buffered"):
        tree.lookup("odom", "base_link", 3 * 10**9)


def test_bad_transforms_are_counted_not_taken():
    tree = TfTree()
    assert not tree.add("a", "a", translation=(0, 0, 0), rotation=(0, 0, 0, 1))
    assert not tree.add("a", "b", translation=(np.nan, 0, 0), rotation=(0, 0, 0, 1))
    assert not tree.add("a", "b", translation=(0, 0, 0), rotation=(0, 0, 0, 0))
    assert tree.add("a", "b", translation=(0, 0, 0), rotation=(0, 0, 0, 1))
    assert not tree.add("c", "b", translation=(0, 0, 0), rotation=(0, 0, 0, 1))  # second parent
    assert not tree.add("b", "a", translation=(0, 0, 0), rotation=(0, 0, 0, 1))  # a loop
    assert tree.rejected == 5
