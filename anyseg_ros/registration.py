"""Depth and event images onto the RGB camera's pixel grid (as depth_image_proc's register).

Depth: every valid pixel is back-projected with the depth camera's intrinsics (through its pixel
centre), moved into the RGB optical frame with the tf between the two, and projected with the
RGB camera's model (distortion included, the same projection as the LiDAR's), nearest depth
winning. Events carry no depth, so an event image can only be moved onto the RGB grid when the
two cameras share their optical centre (a pure change of intrinsics or a rotation: the
homography K_rgb R K_event^-1); a translated event camera is refused.
"""

from __future__ import annotations

import numpy as np

from anyseg_model.representations import LidarScan, depth_metres

from .core.decode import CameraModel

SAME_CENTRE_M = 1e-3  # cameras closer than this share their optical centre
SAME_K = 1e-6  # relative tolerance of "the same intrinsics"


def lidar_scan(
    points: np.ndarray, cam: CameraModel, extrinsic: np.ndarray, size: tuple[int, int]
) -> LidarScan:
    """A LiDAR scan (or back-projected depth) to project into ``cam`` at ``size`` (w, h), with
    the camera's distortion model (plumb_bob, rational_polynomial or equidistant)."""
    model = cam.distortion_model if cam.D is not None else "plumb_bob"
    return LidarScan(points, cam.K, extrinsic, size, cam.D, distortion_model=model)


def same_grid(a: CameraModel, b: CameraModel, T_b_a: np.ndarray) -> bool:
    """True if an image of camera ``a`` already is on camera ``b``'s grid (up to a resize)."""
    if not np.allclose(T_b_a, np.eye(4), atol=1e-9):
        return False
    if (a.D is not None and np.any(a.D)) or (b.D is not None and np.any(b.D)):
        return a.D is not None and b.D is not None and np.allclose(a.D, b.D) and _same_k(a, b)
    return _same_k(a, b)


def _same_k(a: CameraModel, b: CameraModel) -> bool:
    sx, sy = b.width / a.width, b.height / a.height
    Ka = a.K.copy()
    Ka[0] *= sx
    Ka[1] *= sy
    return bool(np.allclose(Ka, b.K, rtol=SAME_K, atol=SAME_K))


def register_depth(
    depth: np.ndarray, depth_cam: CameraModel, rgb_cam: CameraModel, T_rgb_depth: np.ndarray
) -> np.ndarray:
    """(H, W) depth (uint16 mm or float m) of ``depth_cam`` -> float32 metres on ``rgb_cam``'s
    grid, 0 where no depth pixel lands."""
    z = depth_metres(depth)
    h, w = z.shape
    cam = scaled(depth_cam, w, h)
    v, u = np.nonzero(z > 0)
    zz = z[v, u].astype(np.float64)
    K = cam.K
    y = (v + 0.5 - K[1, 2]) / K[1, 1]
    x = (u + 0.5 - K[0, 2] - K[0, 1] * y) / K[0, 0]
    pts = np.stack([x * zz, y * zz, zz], axis=1)
    scan = lidar_scan(pts, rgb_cam, T_rgb_depth, (rgb_cam.width, rgb_cam.height))
    return scan.projection.depth


def register_event(
    event: np.ndarray, event_cam: CameraModel, rgb_cam: CameraModel, T_rgb_event: np.ndarray
) -> np.ndarray | None:
    """An event image onto the RGB grid (nearest pixel), or None when the cameras do not share
    their optical centre (events have no depth to reproject with)."""
    if np.linalg.norm(T_rgb_event[:3, 3]) > SAME_CENTRE_M:
        return None
    h, w = event.shape[:2]
    src = scaled(event_cam, w, h)
    H = rgb_cam.K @ T_rgb_event[:3, :3] @ np.linalg.inv(src.K)
    Hinv = np.linalg.inv(H)
    vv, uu = np.mgrid[0 : rgb_cam.height, 0 : rgb_cam.width]
    p = np.stack([uu + 0.5, vv + 0.5, np.ones_like(uu, float)], axis=-1) @ Hinv.T
    us = np.floor(p[..., 0] / p[..., 2]).astype(np.int64)
    vs = np.floor(p[..., 1] / p[..., 2]).astype(np.int64)
    ok = (p[..., 2] > 0) & (us >= 0) & (us < w) & (vs >= 0) & (vs < h)
    empty = 128 if event.dtype == np.uint8 else 0  # mono8 frames are offset by 128
    out = np.full((rgb_cam.height, rgb_cam.width, *event.shape[2:]), empty, event.dtype)
    out[ok] = event[vs[ok], us[ok]]
    return out


def scaled(cam: CameraModel, width: int, height: int) -> CameraModel:
    """The camera model for an image of another resolution (same field of view)."""
    if (width, height) == (cam.width, cam.height):
        return cam
    K = cam.K.copy()
    K[0] *= width / cam.width
    K[1] *= height / cam.height
    return CameraModel(K, cam.D, width, height, cam.distortion_model, cam.frame_id)
