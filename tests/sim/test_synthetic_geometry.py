"""Cross-sensor geometry: LiDAR projected with CameraInfo and the extrinsic (the node's own
projection) lands where the camera sees the same surface at the same depth, with the same class."""

from __future__ import annotations

import numpy as np
import pytest

from anyseg_model.representations import LidarScan, project_lidar


def _neighbourhood(a: np.ndarray) -> np.ndarray:
    """(9, H, W) stack of every pixel's 3x3 neighbourhood (edges repeated)."""
    h, w = a.shape
    p = np.pad(a, 1, mode="edge")
    return np.stack([p[i : i + h, j : j + w] for i in range(3) for j in range(3)])


def _agreement(frame, extrinsic: np.ndarray) -> tuple[float, float, int]:
    """Fraction of projected LiDAR points whose camera z lies within the depth range of their
    pixel's 3x3 neighbourhood (a point falls anywhere inside its pixel, the depth image holds the
    pixel centre's value), and fraction whose class occurs in that neighbourhood."""
    ci = frame.camera_info
    proj = project_lidar(LidarScan(frame.lidar, ci.K, extrinsic, (ci.width, ci.height), ci.D))
    hit = (proj.depth > 0) & (frame.depth > 0)
    depth = np.where(frame.depth > 0, frame.depth, np.inf)
    nb = _neighbourhood(depth)
    z = proj.depth[hit]
    tol = 0.01 * z + 0.02
    lo, hi = nb.min(0)[hit], np.where(np.isfinite(nb), nb, -np.inf).max(0)[hit]
    depth_ok = (z >= lo - tol) & (z <= hi + tol)
    labels = frame.lidar_labels[proj.index[hit]]
    label_ok = (_neighbourhood(frame.labels)[:, hit] == labels).any(0)
    return depth_ok.mean(), label_ok.mean(), int(hit.sum())


@pytest.mark.parametrize("index", [0, 1, 2])
def test_projected_lidar_agrees_with_depth_and_labels(exact_world, index):
    f = exact_world.frame(index)
    depth_ok, label_ok, n = _agreement(f, f.lidar_extrinsic)
    assert n > 1500  # enough points in view to mean something
    # What is left are points the LiDAR, mounted 40 cm higher, sees behind an occluding edge.
    assert depth_ok > 0.97, depth_ok
    assert label_ok > 0.97, label_ok


def test_a_wrong_extrinsic_is_caught(exact_world):
    """The check above can fail: 30 cm of calibration error breaks it."""
    f = exact_world.frame(0)
    wrong = f.lidar_extrinsic.copy()
    wrong[1, 3] += 0.3
    depth_ok, _, _ = _agreement(f, wrong)
    assert depth_ok < 0.8


def test_extrinsic_matches_the_mounting(exact_world):
    """The LiDAR (x forward, z up) sits behind and above the camera (z forward, y down)."""
    T = exact_world.rig.T_cam_lidar
    forward = T[:3, :3] @ np.array([1.0, 0.0, 0.0])
    up = T[:3, :3] @ np.array([0.0, 0.0, 1.0])
    assert forward[2] > 0.99 and up[1] < -0.99
    lidar_in_camera = T[:3, 3]
    assert lidar_in_camera[1] < -0.3 and lidar_in_camera[2] < -0.3  # above (y up = -) and behind


def test_noisy_depth_still_agrees_with_exact_lidar_nearby(world):
    f = world.frame(0)
    ci = f.camera_info
    proj = project_lidar(f.lidar_scan())
    hit = (proj.depth > 0) & (f.depth > 0) & (proj.depth < 15.0)
    z = proj.depth[hit]
    nb = _neighbourhood(np.where(f.depth > 0, f.depth, np.inf))
    lo, hi = nb.min(0)[hit], np.where(np.isfinite(nb), nb, -np.inf).max(0)[hit]
    tol = 0.01 * z + 0.02 + 3 * world.config.depth_noise * z**2
    assert ((z >= lo - tol) & (z <= hi + tol)).mean() > 0.95
    assert ci.width == f.depth.shape[1]
