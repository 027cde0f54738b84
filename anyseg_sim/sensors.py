"""Sensor models: what each sensor makes of the rendered scene, including its failure modes.

- RGB camera: exposure, photon/read noise scaled by gain, sRGB quantisation; motion blur,
  over- and under-exposure.
- Depth camera: camera z in metres within a range, stereo-like noise growing with z^2, blind
  beyond the fog visibility; it is active, so darkness does not matter.
- Event camera: per-pixel log-intensity change over a time window divided by a per-pixel contrast
  threshold (signed counts), plus background-activity noise; optional low resolution.
- LiDAR: exact ranges (1 cm noise) along fixed beams, intensity from material reflectivity and
  incidence angle; rain and fog remove and add returns; optional jitter.
"""

from __future__ import annotations

import math

import numpy as np

from .shading import Lighting

# Extra exposure gain of the camera failure modes.
FAILURE_GAIN = {"overexposure": 6.0, "underexposure": 0.07}
EVENT_LOWRES_FACTOR = 4
_GAMMA_LUT = np.round(np.linspace(0.0, 1.0, 4096) ** (1 / 2.2) * 255).astype(np.uint8)
LIDAR_JITTER_M = 0.08


def camera_image(
    rad: np.ndarray, light: Lighting, failure: str | None, rng: np.random.Generator
) -> np.ndarray:
    """Linear radiance (3, H, W) -> uint8 RGB (H, W, 3) as the camera records it."""
    e = rad.astype(np.float32) * np.float32(light.exposure * FAILURE_GAIN.get(failure, 1.0))
    if failure == "motionblur":
        # Camera shake during the exposure: a linear blur of random direction and length.
        angle = rng.uniform(0, math.pi)
        length = max(3, int(rng.uniform(0.04, 0.08) * e.shape[2]))
        e = linear_blur(e, angle, length)
    # Shot noise grows with the signal, read noise is constant; both scale with analog gain.
    var = np.float32(8e-4 * light.noise) * np.maximum(e, 0) + np.float32((4e-3 * light.noise) ** 2)
    e += np.sqrt(var) * rng.standard_normal(e.shape, dtype=np.float32)
    if failure == "overexposure":
        excess = np.maximum(e - 1.0, 0.0).mean(axis=0, keepdims=True)
        e += 0.5 * box_blur(excess, max(1, e.shape[2] // 40))  # bloom around clipped areas
    # Gamma 1/2.2 through a 12-bit lookup table (much cheaper than a per-pixel power).
    code = (np.clip(e, 0.0, 1.0) * np.float32(_GAMMA_LUT.size - 1) + np.float32(0.5)).astype(
        np.int32
    )
    return np.ascontiguousarray(np.take(_GAMMA_LUT, code).transpose(1, 2, 0))


def linear_blur(img: np.ndarray, angle: float, length: int) -> np.ndarray:
    """Average of ``length`` copies of a (C, H, W) image shifted along ``angle`` (edges clamped)."""
    h, w = img.shape[1:]
    acc = np.zeros_like(img)
    for k in range(length):
        s = k - (length - 1) / 2
        dx, dy = int(round(s * math.cos(angle))), int(round(s * math.sin(angle)))
        rows = np.clip(np.arange(h) + dy, 0, h - 1)
        cols = np.clip(np.arange(w) + dx, 0, w - 1)
        acc += img[:, rows][:, :, cols]
    return acc / np.float32(length)


def box_blur(img: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur over the last two axes with clamped edges (cumulative sums)."""
    out = img
    for axis in (-2, -1):
        n = out.shape[axis]
        pad = np.concatenate(
            [np.take(out, [0] * (radius + 1), axis), out, np.take(out, [n - 1] * radius, axis)],
            axis,
        )
        c = np.cumsum(pad, axis=axis, dtype=np.float64)
        hi = np.take(c, np.arange(2 * radius + 1, 2 * radius + 1 + n), axis)
        lo = np.take(c, np.arange(0, n), axis)
        out = ((hi - lo) / (2 * radius + 1)).astype(img.dtype)
    return out


def depth_image(
    z: np.ndarray,
    dist: np.ndarray,
    depth_range: tuple[float, float],
    noise_k: float,
    light: Lighting,
    rng: np.random.Generator,
) -> np.ndarray:
    """Camera-z (H, W) with inf for sky -> measured float32 metres, 0 = no measurement."""
    near, far = depth_range
    valid = np.isfinite(z) & (z >= near) & (z <= far)
    if light.fog_m:
        valid &= dist <= light.fog_m  # the matching fails where fog has eaten the contrast
    noise = rng.standard_normal(z.shape, dtype=np.float32)
    zz = np.where(valid, z, 0.0)
    # Stereo depth error grows with z^2 (default 1 mm at 1 m, 10 cm at 10 m); clipped at 3 sigma.
    out = zz + noise_k * zz * zz * np.clip(noise, -3.0, 3.0)
    return np.where(valid, out, 0.0).astype(np.float32)


def luminance(rad: np.ndarray) -> np.ndarray:
    """Linear luminance (H, W) of a (3, H, W) radiance image (Rec. 709 weights)."""
    return 0.2126 * rad[0] + 0.7152 * rad[1] + 0.0722 * rad[2]


def event_frame(
    lum0: np.ndarray,
    lum1: np.ndarray,
    threshold: np.ndarray,
    light: Lighting,
    window: float,
    failure: str | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Net signed event count per pixel between two luminance images, as mono8 offset 128.

    Each pixel fires one event every time its log intensity moves by its contrast threshold
    (polarity = sign), so counts grow with the contrast of the edges that move across it.
    """
    h, w = lum1.shape
    l0, l1 = np.log(lum0 + 0.01), np.log(lum1 + 0.01)
    th = threshold
    if failure == "eventlowres":
        f = EVENT_LOWRES_FACTOR
        l0, l1 = _block_mean(l0, f), _block_mean(l1, f)
        th = threshold[::f, ::f][: l0.shape[0], : l0.shape[1]]
    dl = l1 - l0
    n = np.trunc(dl / th)
    p = light.event_noise_hz * window
    noise = rng.random(n.shape) < p
    n = n + noise * np.where(rng.random(n.shape) < 0.5, -1.0, 1.0)
    n = np.clip(n, -127, 127)
    if failure == "eventlowres":
        f = EVENT_LOWRES_FACTOR
        n = np.repeat(np.repeat(n, f, axis=0), f, axis=1)[:h, :w]
    return (128 + n).astype(np.uint8)


def _block_mean(a: np.ndarray, f: int) -> np.ndarray:
    h, w = a.shape
    hp, wp = -(-h // f) * f, -(-w // f) * f
    a = np.pad(a, ((0, hp - h), (0, wp - w)), mode="edge")
    return a.reshape(hp // f, f, wp // f, f).mean(axis=(1, 3))


def lidar_returns(
    ranges: np.ndarray,
    refl: np.ndarray,
    cos_inc: np.ndarray,
    labels: np.ndarray,
    dirs_local: np.ndarray,
    range_limits: tuple[float, float],
    light: Lighting,
    failure: str | None,
    rng: np.random.Generator,
    beams: list | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-beam true ranges (inf = no hit) -> ((N, 4) float32 x, y, z, intensity in the LiDAR
    frame, (N,) uint8 labels). Beams without a return are dropped (an unorganised cloud, as most
    drivers publish it); spurious returns from rain drops are labelled 255 (ignore). ``beams``,
    if given, receives the beam index of every returned point (for organised clouds)."""
    n = len(ranges)
    r_min, r_max = range_limits
    r = ranges + 0.01 * rng.standard_normal(n)  # ranging noise: about a centimetre
    intensity = refl * (0.3 + 0.7 * np.abs(cos_inc))
    valid = np.isfinite(ranges) & (ranges >= r_min) & (ranges <= r_max)
    # Drawn in every condition, so the stream of random numbers never depends on the weather.
    u_drop = rng.random(n)
    labels = labels.copy()
    if light.fog_m:
        # Two-way attenuation: weak returns die first, so fog cuts range from the far end.
        intensity = intensity * np.exp(-3.0 / light.fog_m * ranges)
        valid &= ranges <= 1.6 * light.fog_m
    if light.rain:
        finite = np.where(np.isfinite(ranges), ranges, 0.0)
        valid &= u_drop > 1.0 - np.exp(-finite / 250.0)  # drops scatter beams, more with range
        spurious = rng.random(n) < 0.003  # returns from drops near the sensor
        r = np.where(spurious, rng.uniform(r_min, 6.0, n), r)
        intensity = np.where(spurious, rng.uniform(0.0, 0.08, n), intensity)
        labels[spurious] = 255
        valid |= spurious
    keep = np.flatnonzero(valid)
    out = np.empty((keep.size, 4), np.float32)
    rk = r[keep]
    for i in range(3):  # one column at a time: no (N, 3) broadcasting
        out[:, i] = dirs_local[keep, i] * rk
    if failure == "lidarjitter":
        out[:, :3] += rng.normal(0.0, LIDAR_JITTER_M, (keep.size, 3))
    out[:, 3] = np.clip(intensity[keep], 0.0, 1.0)
    if beams is not None:
        beams.append(keep)
    return out, labels[keep].astype(np.uint8)


def hha(depth: np.ndarray, K: np.ndarray, T_base_cam: np.ndarray) -> np.ndarray:
    """HHA encoding (Gupta et al. 2014) of a metric depth image, uint8 (H, W, 3).

    Channels: horizontal disparity (255 * min(1, 2 m / depth)), height above the ground plane
    (25 levels per metre, 0-10.2 m), angle between the surface normal and gravity ("up" = 0,
    180 degrees -> 255). Gravity and the ground come from the known camera mounting (a robot
    knows its extrinsics) instead of being estimated from the image as the original does.
    Pixels without depth, and normals next to them, are 0.
    """
    f32 = np.float32
    h, w = depth.shape
    z = depth.astype(f32)
    valid = z > 0
    u = ((np.arange(w) + 0.5 - K[0, 2]) / K[0, 0]).astype(f32)[None, :]
    v = ((np.arange(h) + 0.5 - K[1, 2]) / K[1, 1]).astype(f32)[:, None]
    p = (u * z, v * z, z)  # optical-frame point per pixel, as three (H, W) planes
    R, t = T_base_cam[:3, :3].astype(f32), T_base_cam[:3, 3].astype(f32)
    height = R[2, 0] * p[0] + R[2, 1] * p[1] + R[2, 2] * p[2] + t[2]  # base z: ground at 0
    # Normal = (dp/dv) x (dp/du) by central differences (image v runs down, so this order
    # points out of the surface towards the camera), in the optical frame; its component along
    # "up" (base z written in optical axes) gives the angle to gravity.
    du = [np.zeros_like(z) for _ in range(3)]
    dv = [np.zeros_like(z) for _ in range(3)]
    for i in range(3):
        du[i][:, 1:-1] = p[i][:, 2:] - p[i][:, :-2]
        dv[i][1:-1] = p[i][2:] - p[i][:-2]
    n = (
        dv[1] * du[2] - dv[2] * du[1],
        dv[2] * du[0] - dv[0] * du[2],
        dv[0] * du[1] - dv[1] * du[0],
    )
    norm = np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2])
    up = (R[2, 0] * n[0] + R[2, 1] * n[1] + R[2, 2] * n[2]) / np.maximum(norm, f32(1e-12))
    ok = valid & (norm > 0)
    ok[:, [0, -1]] = False
    ok[[0, -1], :] = False
    ok[:, 1:-1] &= valid[:, 2:] & valid[:, :-2]
    ok[1:-1, :] &= valid[2:] & valid[:-2]
    angle = np.degrees(np.arccos(np.clip(up, -1, 1)))
    out = np.zeros((h, w, 3), np.uint8)
    out[..., 0] = np.where(valid, np.round(255 * np.minimum(1, 2 / np.maximum(z, f32(1e-6)))), 0)
    out[..., 1] = np.where(valid, np.round(np.clip(height * 25, 0, 255)), 0)
    out[..., 2] = np.where(ok, np.round(angle * f32(255 / 180)), 0)
    return out
