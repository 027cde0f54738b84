"""Colour encodings of sensor_msgs/Image -> the RGB (or grey) uint8 image the model takes.

Pure numpy, and bit-exact with OpenCV's ``cv2.cvtColor`` where OpenCV has the conversion (the
tests compare every encoding with it):

- ``rgba8`` / ``bgra8``: alpha dropped (``COLOR_RGBA2RGB`` / ``COLOR_BGRA2RGB``).
- ``mono16``: scaled to 8 bits with rounding, 65535 -> 255 (``cv2.convertScaleAbs`` with
  ``alpha = 255 / 65535``, what ``cv_bridge`` does to change bit depth).
- ``yuv422`` (UYVY byte order U0 Y0 V0 Y1) and ``yuv422_yuy2`` (Y0 U0 Y1 V0): ITU-R BT.601
  limited range in OpenCV's 20-bit fixed point (``COLOR_YUV2RGB_UYVY`` / ``_YUY2``).
- ``bayer_rggb8`` / ``bggr8`` / ``gbrg8`` / ``grbg8``: bilinear demosaicing. ROS names the 2x2
  pattern from the top-left pixel, OpenCV from the second row and column, so ``bayer_rggb8`` is
  ``COLOR_BayerBG2RGB`` (as in ``cv_bridge``). Interior pixels equal OpenCV's; the outermost
  row and column are copied from their neighbours (OpenCV extrapolates them its own way).
"""

from __future__ import annotations

import numpy as np

# encoding -> (numpy type code, values per pixel in the message buffer)
COLOR_LAYOUTS: dict[str, tuple[str, int]] = {
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono16": ("u2", 1),
    "yuv422": ("u1", 2),
    "yuv422_yuy2": ("u1", 2),
    "bayer_rggb8": ("u1", 1),
    "bayer_bggr8": ("u1", 1),
    "bayer_gbrg8": ("u1", 1),
    "bayer_grbg8": ("u1", 1),
}

# Where the red sample sits in each 2x2 Bayer tile: (row, column) of R; B is diagonal to it.
_BAYER_RED = {
    "bayer_rggb8": (0, 0),
    "bayer_grbg8": (0, 1),
    "bayer_gbrg8": (1, 0),
    "bayer_bggr8": (1, 1),
}

# OpenCV's BT.601 fixed-point coefficients (Y offset 16, chroma offset 128).
_SHIFT = 20
_CY, _CUB, _CUG, _CVG, _CVR = 1220542, 2116026, -409993, -852492, 1673527


def to_rgb(arr: np.ndarray, encoding: str) -> np.ndarray:
    """A decoded buffer of one of :data:`COLOR_LAYOUTS` -> (H, W, 3) RGB or (H, W) grey uint8."""
    if encoding in ("rgba8", "bgra8"):
        rgb = arr[..., :3]
        return np.ascontiguousarray(rgb if encoding == "rgba8" else rgb[..., ::-1])
    if encoding == "mono16":
        return mono16_to_mono8(arr)
    if encoding in ("yuv422", "yuv422_yuy2"):
        return yuv422_to_rgb(arr, uyvy=encoding == "yuv422")
    if encoding in _BAYER_RED:
        return demosaic(arr, encoding)
    raise ValueError(f"no colour conversion for {encoding!r}; known: {list(COLOR_LAYOUTS)}")


def mono16_to_mono8(a: np.ndarray) -> np.ndarray:
    """uint16 grey -> uint8 grey, ``round(v * 255 / 65535)``."""
    return ((a.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def yuv422_to_rgb(a: np.ndarray, uyvy: bool) -> np.ndarray:
    """(H, W, 2) uint8 packed 4:2:2 (two pixels share one U and one V) -> (H, W, 3) RGB."""
    h, w = a.shape[:2]
    if w % 2:
        raise ValueError(f"4:2:2 images need an even width, got {w}")
    pairs = a.reshape(h, w // 2, 4).astype(np.int32)
    if uyvy:  # U0 Y0 V0 Y1
        u, y0, v, y1 = (pairs[..., i] for i in range(4))
    else:  # Y0 U0 Y1 V0
        y0, u, y1, v = (pairs[..., i] for i in range(4))
    uu, vv = u - 128, v - 128
    half = 1 << (_SHIFT - 1)
    ruv = half + _CVR * vv
    guv = half + _CVG * vv + _CUG * uu
    buv = half + _CUB * uu
    out = np.empty((h, w // 2, 2, 3), np.uint8)
    for k, y in enumerate((y0, y1)):
        yy = np.maximum(y - 16, 0) * _CY
        for c, chroma in enumerate((ruv, guv, buv)):
            out[:, :, k, c] = np.clip((yy + chroma) >> _SHIFT, 0, 255)
    return out.reshape(h, w, 3)


def demosaic(raw: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W) uint8 Bayer mosaic -> (H, W, 3) RGB by bilinear interpolation."""
    if encoding not in _BAYER_RED:
        raise ValueError(f"unknown Bayer pattern {encoding!r}; known: {list(_BAYER_RED)}")
    h, w = raw.shape
    if h < 2 or w < 2:
        raise ValueError(f"a Bayer image needs at least 2x2 pixels, got {w}x{h}")
    p = np.pad(raw.astype(np.int32), 1, mode="reflect")  # reflect keeps the 2x2 phase

    def at(dy: int, dx: int) -> np.ndarray:
        return p[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

    cross = at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1)
    diag = at(-1, -1) + at(-1, 1) + at(1, -1) + at(1, 1)
    horiz = at(0, -1) + at(0, 1)
    vert = at(-1, 0) + at(1, 0)
    centre = at(0, 0)
    avg4 = lambda s: (s + 2) >> 2  # noqa: E731 - OpenCV rounds each mean to nearest
    avg2 = lambda s: (s + 1) >> 1  # noqa: E731

    ry, rx = _BAYER_RED[encoding]
    rows = (np.arange(h) % 2)[:, None]
    cols = (np.arange(w) % 2)[None, :]
    is_r = (rows == ry) & (cols == rx)
    is_b = (rows != ry) & (cols != rx)
    g_in_r_row = (rows == ry) & (cols != rx)  # green with red left and right
    g_in_b_row = (rows != ry) & (cols == rx)  # green with blue left and right

    r = np.where(is_r, centre, 0)
    r = np.where(is_b, avg4(diag), r)
    r = np.where(g_in_r_row, avg2(horiz), r)
    r = np.where(g_in_b_row, avg2(vert), r)
    b = np.where(is_b, centre, 0)
    b = np.where(is_r, avg4(diag), b)
    b = np.where(g_in_b_row, avg2(horiz), b)
    b = np.where(g_in_r_row, avg2(vert), b)
    g = np.where(is_r | is_b, avg4(cross), centre)
    out = np.stack([r, g, b], axis=-1).astype(np.uint8)
    # The outermost ring: copy from the nearest interior pixel of the same row/column.
    if h > 2 and w > 2:
        out[0], out[-1] = out[1], out[-2]
        out[:, 0], out[:, -1] = out[:, 1], out[:, -2]
    return out
