"""The sensor rig: ego trajectory, pinhole camera, spinning LiDAR and their frames.

Frames (all right-handed):
- world: x along the road, y to the left, z up; the road centre line is y = 0.
- base (the ego vehicle): same axes as world (the road is straight, so the ego never turns),
  origin on the ground under the rear axle.
- camera optical frame (``camera_optical``): z forward, x right, y down (REP 103 optical).
- LiDAR frame (``lidar``): ROS body convention, x forward, y left, z up; mounted above and
  behind the camera, so the lidar->camera extrinsic is a real rotation plus translation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import WorldConfig

# Mounting positions in the base frame (metres).
CAMERA_IN_BASE = np.array([1.6, 0.0, 1.55])
LIDAR_IN_BASE = np.array([1.2, 0.0, 1.95])
EGO_LANE_Y = -1.75  # right-hand traffic: the ego drives in the right lane, heading +x


def rot_y(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = rotation
    t[:3, 3] = translation
    return t


# Columns are the optical axes written in base axes: x_opt = -y_base, y_opt = -z_base, z_opt = x.
_OPTICAL_IN_BASE = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class Trajectory:
    """Ego motion along the right lane: speed ``v0 + a*sin(w*t)`` so frames are never evenly
    spaced in distance; closed-form position so any time ``t`` can be rendered directly."""

    v0: float
    accel: float = 1.5
    omega: float = 0.2

    def x(self, t: float) -> float:
        return self.v0 * t + self.accel / self.omega * (1.0 - math.cos(self.omega * t))

    def speed(self, t: float) -> float:
        return self.v0 + self.accel * math.sin(self.omega * t)

    def base_origin(self, t: float) -> np.ndarray:
        return np.array([self.x(t), EGO_LANE_Y, 0.0])


class Rig:
    """Camera intrinsics/extrinsics and LiDAR beam layout for one :class:`WorldConfig`."""

    def __init__(self, cfg: WorldConfig) -> None:
        self.width, self.height = cfg.width, cfg.height
        fx = cfg.width / (2.0 * math.tan(math.radians(cfg.hfov_deg) / 2.0))
        # Principal point at the image centre; pixel (u, v) covers [u, u+1) x [v, v+1), so its
        # centre ray goes through (u + 0.5, v + 0.5), the convention project_lidar floors with.
        self.K = np.array([[fx, 0.0, cfg.width / 2.0], [0.0, fx, cfg.height / 2.0], [0, 0, 1.0]])
        self.D = np.zeros(5)
        self.P = np.hstack([self.K, np.zeros((3, 1))])
        for a in (self.K, self.D, self.P):  # shared by every Frame: make accidental edits fail
            a.setflags(write=False)

        pitch = math.radians(cfg.camera_pitch_deg)
        self.R_base_cam = rot_y(pitch) @ _OPTICAL_IN_BASE  # pitch about y tilts forward down
        self.T_base_cam = transform(self.R_base_cam, CAMERA_IN_BASE)
        self.R_base_lidar = np.eye(3)
        self.T_base_lidar = transform(self.R_base_lidar, LIDAR_IN_BASE)
        # lidar -> camera optical: the node's `lidar_extrinsic` parameter.
        self.T_cam_lidar = np.linalg.inv(self.T_base_cam) @ self.T_base_lidar

        # Camera rays in world axes, scaled so their optical z is 1: the ray parameter at a hit
        # is then the depth image value (camera z) itself.
        u = (np.arange(cfg.width) + 0.5 - self.K[0, 2]) / fx
        v = (np.arange(cfg.height) + 0.5 - self.K[1, 2]) / fx
        uu, vv = np.meshgrid(u, v)
        d_cam = np.stack([uu, vv, np.ones_like(uu)], axis=-1).reshape(-1, 3)  # (H*W, 3)
        self.camera_dirs = d_cam @ self.R_base_cam.T

        lo, hi = cfg.lidar_fov_deg
        self.ring_elevation = np.radians(np.linspace(lo, hi, cfg.lidar_rings))
        step = 2.0 * math.pi / cfg.lidar_columns
        self.column_azimuth = -math.pi + (np.arange(cfg.lidar_columns) + 0.5) * step
        el, az = np.meshgrid(self.ring_elevation, self.column_azimuth, indexing="ij")
        d_lidar = np.stack(
            [np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1
        ).reshape(-1, 3)  # (rings*columns, 3), unit length, ring-major
        self.lidar_dirs_local = d_lidar
        self.lidar_dirs = d_lidar @ self.R_base_lidar.T

    def camera_origin(self, base: np.ndarray) -> np.ndarray:
        return base + CAMERA_IN_BASE

    def lidar_origin(self, base: np.ndarray) -> np.ndarray:
        return base + LIDAR_IN_BASE


def lidar_extrinsic(cfg: WorldConfig | None = None) -> list[float]:
    """The rig's lidar -> camera optical transform as the node's ``lidar_extrinsic`` parameter:
    16 floats, row-major (floats only: rcl's YAML parser refuses a list mixing 0 and 0.0)."""
    return [float(v) for v in Rig(cfg or WorldConfig()).T_cam_lidar.reshape(-1)]
