"""Scene radiance: materials, procedural textures and the lighting of each weather condition.

Radiance is linear RGB before any camera: the event sensor sees it directly (log intensity), the
RGB camera applies exposure, noise and its failure modes on top (sensors.py). Textures only
modulate colour (windows, fence slats, paint, foliage speckle), never geometry or LiDAR
reflectivity, which is what makes some classes visible to RGB alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .prims import (
    ROAD,
    ROADLINE,
    SIDEWALK,
    TERRAIN,
    TEX_BRICK,
    TEX_BUILDING,
    TEX_FENCE,
    TEX_FOLIAGE,
    TEX_LAMP,
    TEX_TILES,
    Prims,
)
from .raycast import GROUND, Hits


@dataclass(frozen=True)
class Lighting:
    """How a condition lights the scene and how the sensors cope with it."""

    ambient: float  # hemispherical sky irradiance
    sun: float  # direct sun irradiance
    sky_horizon: tuple[float, float, float]
    sky_zenith: tuple[float, float, float]
    haze_m: float  # aerial perspective: distance over which contrast falls to 1/e
    exposure: float  # camera auto-exposure gain
    noise: float  # camera noise scale (analog gain: high at night)
    event_noise_hz: float  # background activity of the event sensor per pixel
    fog_m: float = 0.0  # meteorological visibility (contrast 5%); 0 = no fog
    headlights: float = 0.0
    emissive: float = 0.0  # lit windows and street lamps
    rain: bool = False


_COMMON = {"haze_m": 1500.0, "exposure": 1.3, "noise": 1.0, "event_noise_hz": 0.1}
LIGHTING: dict[str, Lighting] = {
    "sun": Lighting(
        **{**_COMMON, "exposure": 1.45},
        ambient=0.35,
        sun=0.9,
        sky_horizon=(0.55, 0.62, 0.72),
        sky_zenith=(0.22, 0.38, 0.68),
    ),
    "cloud": Lighting(
        **{**_COMMON, "haze_m": 900.0},
        ambient=0.85,
        sun=0.08,
        sky_horizon=(0.6, 0.6, 0.62),
        sky_zenith=(0.48, 0.49, 0.52),
    ),
    # Night: auto-exposure turns the gain up (x5), so the camera noise grows with it.
    "night": Lighting(
        **{**_COMMON, "haze_m": 1200.0, "exposure": 5.0, "noise": 3.0, "event_noise_hz": 1.2},
        ambient=0.012,
        sun=0.0,
        sky_horizon=(0.025, 0.022, 0.03),
        sky_zenith=(0.004, 0.005, 0.01),
        headlights=2.2,
        emissive=0.7,
    ),
    "fog": Lighting(
        **{**_COMMON, "event_noise_hz": 0.15},
        ambient=0.7,
        sun=0.04,
        sky_horizon=(0.6, 0.61, 0.63),
        sky_zenith=(0.6, 0.61, 0.63),
        fog_m=45.0,
    ),
    "rain": Lighting(
        **{**_COMMON, "haze_m": 500.0, "exposure": 1.5, "noise": 1.3, "event_noise_hz": 0.25},
        ambient=0.55,
        sun=0.0,
        sky_horizon=(0.42, 0.43, 0.46),
        sky_zenith=(0.36, 0.37, 0.4),
        rain=True,
    ),
}

# Ground reflectivity for the LiDAR. Lane paint deliberately gets the asphalt's value (real
# retro-reflective paint is brighter), so RoadLine stays a class only colour can separate.
GROUND_REFLECTIVITY = {ROAD: 0.2, ROADLINE: 0.2, SIDEWALK: 0.35, TERRAIN: 0.4}


def hash01(a: np.ndarray, b: np.ndarray, c: np.ndarray | int = 0) -> np.ndarray:
    """Deterministic pseudo-random float32 in [0, 1) per integer cell (a, b, c): integer mixing
    in uint32, so every machine gets the same texture bits."""
    h = a.astype(np.int32).view(np.uint32) * np.uint32(0x9E3779B1)
    h ^= b.astype(np.int32).view(np.uint32) * np.uint32(0x85EBCA77)
    h ^= np.asarray(c).astype(np.int64).astype(np.uint32) * np.uint32(0xC2B2AE3D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def sun_direction(azimuth: float, elevation: float) -> np.ndarray:
    return np.array(
        [
            math.cos(elevation) * math.cos(azimuth),
            math.cos(elevation) * math.sin(azimuth),
            math.sin(elevation),
        ]
    )


def sky_gradient(dirs: np.ndarray) -> np.ndarray:
    """Blend factor (R,) from horizon (0) to zenith (1) for view directions (R, 3)."""
    up = dirs[:, 2] / np.linalg.norm(dirs, axis=1)
    return np.clip(up * 2.5, 0.0, 1.0).astype(np.float32)


def sky(gradient: np.ndarray, light: Lighting) -> np.ndarray:
    """Sky radiance (3, R) for a :func:`sky_gradient`."""
    hor = np.asarray(light.sky_horizon, np.float32)[:, None]
    zen = np.asarray(light.sky_zenith, np.float32)[:, None]
    return hor + (zen - hor) * gradient


def _col(rgb) -> np.ndarray:
    return np.asarray(rgb, np.float32)[:, None]


def ground_albedo(cls: np.ndarray, x: np.ndarray, y: np.ndarray, wet: bool) -> np.ndarray:
    """Asphalt, paint, paving and grass (3, N), with cell noise so the camera sees texture."""
    fine = hash01(np.floor(x * 4), np.floor(y * 4), 1).astype(np.float32)
    coarse = hash01(np.floor(x * 0.5), np.floor(y * 0.5), 2).astype(np.float32)
    road = 0.12 + 0.02 * fine + 0.03 * coarse
    if wet:
        road = road * 0.55
    alb = np.broadcast_to(road, (3, len(road))).copy()
    paint = cls == ROADLINE
    alb[:, paint] = (0.72 + 0.08 * fine[paint]) * _col([1.0, 1.0, 0.95])
    grass = cls == TERRAIN
    g = coarse[grass]
    alb[:, grass] = (0.09 + 0.05 * fine[grass]) * _col([1.0, 2.0, 0.6]) * (1 - g) + g * _col(
        [0.22, 0.18, 0.11]
    )
    alb[:, cls == SIDEWALK] = 0.5
    return alb


def surface_albedo(
    hits: Hits, prims: Prims, cls: np.ndarray, light: Lighting
) -> tuple[np.ndarray, np.ndarray]:
    """(albedo (3, R), emission (3, R)) of every hit; zeros where nothing was hit.

    Object textures are brightness factors on the object's colour (one 1-D array for all rays)
    rather than per-channel masked writes, which keeps this cheap.
    """
    n_rays = len(hits.t)
    # Two sentinel rows: prim index -2 (NOTHING) and -1 (GROUND) gather zeros / no texture.
    albedo = np.take(
        np.concatenate([prims.albedo, np.zeros((2, 3), np.float32)]).T, hits.prim, axis=1
    )
    tex = np.concatenate([prims.tex, np.array([255, 255], np.uint8)])[hits.prim]
    factor = np.ones(n_rays, np.float32)
    emission = None
    q, n = hits.point, hits.normal

    idx = np.flatnonzero(tex == TEX_BUILDING)
    if idx.size:  # a grid of dark windows on the walls, darker roofs, some windows lit at night
        qx, qy, qz, nz = q[0, idx], q[1, idx], q[2, idx], n[2, idx]
        s = np.where(np.abs(n[1, idx]) > 0.5, qx, qy)  # coordinate along the facade
        fs, fz = np.mod(s, 3.0), np.mod(qz, 3.2)
        window = (fs > 0.8) & (fs < 2.2) & (fz > 1.0) & (fz < 2.6) & (np.abs(nz) < 0.5)
        factor[idx] = np.where(window, 0.15, np.where(nz > 0.5, 0.6, 1.0))
        if light.emissive:
            oid = prims.oid[hits.prim[idx]]
            lit = window & (hash01(np.floor(s / 3.0), np.floor(qz / 3.2), oid) < 0.35)
            emission = np.zeros((3, n_rays), np.float32)
            emission[:, idx[lit]] = _col([1.0, 0.78, 0.45]) * (light.emissive * 0.5)
    idx = np.flatnonzero(tex == TEX_FENCE)
    if idx.size:  # vertical slats with dark gaps
        factor[idx] = np.where(np.mod(q[0, idx], 0.12) < 0.08, 1.0, 0.35)
    idx = np.flatnonzero(tex == TEX_BRICK)
    if idx.size:
        qx, qz = q[0, idx], q[2, idx]
        row = np.floor(qz / 0.25)
        mortar = (np.mod(qz, 0.25) < 0.03) | (np.mod(qx + 0.25 * np.mod(row, 2), 0.5) < 0.03)
        factor[idx] = np.where(mortar, 1.3, 0.85 + 0.3 * hash01(np.floor(qx / 0.5), row))
    idx = np.flatnonzero(tex == TEX_FOLIAGE)
    if idx.size:  # leaf speckle
        qx, qy, qz = q[0, idx] * 4, q[1, idx] * 4, q[2, idx] * 4
        oid = prims.oid[hits.prim[idx]]
        factor[idx] = 0.55 + 0.9 * hash01(np.floor(qx) + 7919 * np.floor(qz), np.floor(qy), oid)
    idx = np.flatnonzero(tex == TEX_TILES)
    if idx.size:  # paving with grout lines on top, bare concrete on the curb face
        grout = (np.mod(q[0, idx], 0.5) < 0.04) | (np.mod(q[1, idx], 0.5) < 0.04)
        factor[idx] = np.where(n[2, idx] > 0.5, np.where(grout, 0.75, 1.0), 1.25) * (
            0.7 if light.rain else 1.0
        )
    idx = np.flatnonzero(tex == TEX_LAMP)
    if idx.size and light.emissive:
        emission = np.zeros((3, n_rays), np.float32) if emission is None else emission
        emission[:, idx] = _col([1.6, 1.45, 1.1]) * light.emissive
    albedo *= factor

    g = np.flatnonzero(hits.prim == GROUND)
    albedo[:, g] = ground_albedo(cls[g], q[0, g], q[1, g], light.rain)
    return albedo, emission


def radiance(
    hits: Hits,
    dist: np.ndarray,
    albedo: np.ndarray,
    emission: np.ndarray | None,
    sky_rad: np.ndarray,
    light: Lighting,
    sun_dir: np.ndarray,
    headlight: np.ndarray,
) -> np.ndarray:
    """Linear radiance (3, R) of every camera ray. ``dist`` is the Euclidean hit distance
    (inf where nothing was hit, which the haze term turns into pure sky)."""
    n = hits.normal
    irr = light.ambient * (0.55 + 0.45 * n[2])
    if light.sun:
        irr += light.sun * np.maximum(sun_dir.astype(np.float32) @ n, 0.0)
    if light.headlights:
        # One headlight cone along +x at the ego's front; falls off with angle and distance.
        to = (hits.point - headlight[:, None]).astype(np.float32)
        d = np.sqrt((to * to).sum(0)) + 1e-6
        beam = np.maximum(to[0] / d, 0.0) ** 10
        lambert = np.maximum(-(n * to).sum(0) / d, 0.0)
        irr += light.headlights * beam * lambert / (1.0 + (d / 6.0) ** 2)
    rad = albedo * irr
    if emission is not None:
        rad += emission
    # Aerial perspective (and fog) blend towards the sky colour with distance.
    dist = dist.astype(np.float32)
    haze = np.exp(-dist / np.float32(light.haze_m))
    rad = rad * haze + sky_rad * (1 - haze)
    if light.fog_m:
        tr = np.exp(-3.0 * dist / np.float32(light.fog_m))
        rad = rad * tr + _col(light.sky_horizon) * (1 - tr)
    return rad


def add_rain(rad: np.ndarray, rng: np.random.Generator, light: Lighting) -> np.ndarray:
    """Bright, slightly slanted streaks of falling drops (different at every instant) on a
    (3, H, W) radiance image."""
    _, h, w = rad.shape
    count = int(0.004 * h * w)
    length = max(3, h // 30)
    u0 = rng.uniform(0, w, count)
    v0 = rng.uniform(-length, h, count)
    k = np.arange(length)
    u = (u0[:, None] + 0.25 * k).astype(np.int64).ravel()
    v = (v0[:, None] + k).astype(np.int64).ravel()
    ok = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    flat = v[ok] * w + u[ok]
    for c in range(3):
        np.add.at(rad[c].reshape(-1), flat, np.float32(0.35 * light.sky_horizon[c]))
    return rad
