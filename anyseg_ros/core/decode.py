"""sensor_msgs fields <-> numpy, duck-typed: the same code reads rclpy and ``rosbags`` messages.

Decoding reads only attributes (``height``, ``width``, ``encoding``, ``step``, ``data`` ...), so
any object with the message's fields works: rclpy messages (``data`` is an ``array.array``),
rosbags messages (``data`` is a numpy array), or test stand-ins (``bytes``). Arrays are numpy
views of the message buffer wherever the layout allows (copies only for padding, byte swapping
or bgr -> rgb). Anything malformed raises :class:`DecodeError` with a short ``reason`` key the
node counts.

Building goes the other way: ``build_*`` return plain constructor kwargs and
:class:`PointFieldSpec` tuples for PointField. ``data`` is an ``array.array('B')``: the generated
constructor wraps data in ``array.array('B', data)``, a memcpy for an array (or bytes) but a
per-element loop for a numpy array or list, and with ROS_PYTHON_CHECK_FIELDS=1 the setter checks
every byte of anything but an array.array (~100 ms for 640x480 rgb8).
"""

from __future__ import annotations

import array
import sys
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .images import COLOR_LAYOUTS, to_rgb

NATIVE_BIGENDIAN = sys.byteorder == "big"

# encoding -> (numpy type code, channels). The only encodings the node accepts (REP 118 depth);
# the colour ones of COLOR_LAYOUTS are converted to RGB / grey uint8 (anyseg_ros.core.images).
IMAGE_ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "mono8": ("u1", 1),
    "16UC1": ("u2", 1),
    "16SC1": ("i2", 1),
    "32FC1": ("f4", 1),
    **COLOR_LAYOUTS,
}

# What each input topic may carry (see anyseg_model.representations for the meaning).
MODALITY_ENCODINGS: dict[str, tuple[str, ...]] = {
    "rgb": ("rgb8", "bgr8", "mono8", *COLOR_LAYOUTS),
    "depth": ("16UC1", "32FC1"),  # millimetres (0 = invalid) or metres (NaN/Inf invalid)
    "event": ("mono8", "16SC1", "32FC1"),  # mono8: net polarity count offset by 128
}

# sensor_msgs/PointField datatype constants -> numpy type codes.
POINTFIELD_TYPES: dict[int, str] = {
    1: "i1",
    2: "u1",
    3: "i2",
    4: "u2",
    5: "i4",
    6: "u4",
    7: "f4",
    8: "f8",
}
FLOAT32, UINT8, UINT16 = 7, 2, 4

UNLABELLED = 255  # label of LiDAR points outside the camera image (uint8 labels)


def unlabelled(dtype: Any) -> int:
    """The id of "no label" for labels of ``dtype``: 65535 for uint16 labels (models of more
    than 255 classes), else 255; no class has it."""
    return 65535 if np.dtype(dtype) == np.uint16 else UNLABELLED


class DecodeError(ValueError):
    """A message that cannot be decoded. ``reason`` is a short key for counting."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


# ---------------------------------------------------------------- headers


def stamp_ns(header_or_stamp: Any) -> int:
    """builtin_interfaces/Time (or a Header holding one) -> integer nanoseconds."""
    s = getattr(header_or_stamp, "stamp", header_or_stamp)
    try:
        sec, nsec = int(s.sec), int(s.nanosec)
    except (AttributeError, TypeError, ValueError) as e:
        raise DecodeError("header", f"no usable stamp ({e})") from None
    if not 0 <= nsec < 1_000_000_000:
        raise DecodeError("header", f"nanosec {nsec} out of range")
    return sec * 1_000_000_000 + nsec


def stamp_parts(ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) for a builtin_interfaces/Time."""
    return ns // 1_000_000_000, ns % 1_000_000_000


# ---------------------------------------------------------------- images


def _byte_view(data: Any) -> np.ndarray:
    """The message's data as a flat uint8 array, without copying where possible."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    try:
        return np.frombuffer(data, np.uint8)  # bytes, bytearray, array.array('B'), memoryview
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)  # a list of ints


# Label images as the node publishes them: class ids, mono16 for models of more than 255 classes.
LABEL_ENCODINGS: tuple[str, ...] = ("mono8", "mono16")


def decode_labels(msg: Any, max_pixels: int | None = None) -> np.ndarray:
    """A label image (mono8 or mono16 class ids) -> (H, W) uint8 / uint16, values as they are
    (no scaling, unlike a mono16 camera image)."""
    return decode_image(msg, LABEL_ENCODINGS, max_pixels, convert=False)


def decode_image(
    msg: Any,
    allowed: tuple[str, ...] | None = None,
    max_pixels: int | None = None,
    convert: bool = True,
) -> np.ndarray:
    """sensor_msgs/Image -> contiguous array: (H, W, 3) uint8 in RGB order for the colour
    encodings (rgb8, bgr8, rgba8, bgra8, yuv422, yuv422_yuy2, bayer_*), (H, W) uint8 for mono8
    and mono16 (scaled to 8 bits), else (H, W) uint16 / int16 / float32 in native byte order.

    ``allowed`` restricts the encodings (per input topic); ``max_pixels`` rejects huge images
    before touching the data; ``convert=False`` keeps single-channel values as they are.
    """
    enc = str(msg.encoding)
    if enc not in IMAGE_ENCODINGS or (allowed is not None and enc not in allowed):
        raise DecodeError("encoding", f"{enc!r}; accepted: {list(allowed or IMAGE_ENCODINGS)}")
    code, ch = IMAGE_ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise DecodeError("empty", f"{w}x{h} image")
    if max_pixels is not None and h * w > max_pixels:
        raise DecodeError("too_large", f"{w}x{h} image exceeds max_image_pixels={max_pixels}")
    dtype = np.dtype(code).newbyteorder(">" if msg.is_bigendian else "<")
    pixel = ch * dtype.itemsize
    if step < w * pixel:
        raise DecodeError("step", f"step {step} < width {w} x {pixel} bytes per pixel")
    data = _byte_view(msg.data)
    if data.size != step * h:
        raise DecodeError("data_size", f"{data.size} bytes, expected step {step} x height {h}")
    # Rows may be padded (step > width * pixel): a strided view skips the padding.
    arr = np.ndarray((h, w, ch), dtype, buffer=data, strides=(step, pixel, dtype.itemsize))
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    if enc == "bgr8":
        arr = arr[..., ::-1]
    arr = arr[..., 0] if ch == 1 else arr
    if enc in COLOR_LAYOUTS and (convert or ch != 1):
        try:
            return to_rgb(arr, enc)
        except ValueError as e:  # e.g. an odd width for 4:2:2
            raise DecodeError("geometry", str(e)) from None
    return np.ascontiguousarray(arr)


def build_image(arr: np.ndarray, encoding: str) -> dict[str, Any]:
    """numpy array -> sensor_msgs/Image kwargs (everything but the header), native byte order."""
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"encoding {encoding!r} not supported; valid: {list(IMAGE_ENCODINGS)}")
    code, ch = IMAGE_ENCODINGS[encoding]
    a = np.asarray(arr)
    shape = "(H, W)" if ch == 1 else f"(H, W, {ch})"
    if a.ndim != (2 if ch == 1 else 3) or (ch > 1 and a.shape[2] != ch) or a.dtype != code:
        raise ValueError(f"{encoding} needs {shape} {np.dtype(code)}, got {a.shape} {a.dtype}")
    h, w = a.shape[:2]
    return {
        "height": h,
        "width": w,
        "encoding": encoding,
        "is_bigendian": NATIVE_BIGENDIAN and a.dtype.itemsize > 1,
        "step": w * ch * a.dtype.itemsize,
        "data": _to_array(a),
    }


def colorize(labels: np.ndarray, palette: Any) -> np.ndarray:
    """(H, W) uint8 or uint16 class ids -> (H, W, 3) uint8 colours; ids beyond the palette are
    black."""
    size = 65536 if labels.dtype == np.uint16 else 256  # every value of the dtype has an entry
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:size]
    lut = np.zeros((size, 3), np.uint8)
    lut[: len(pal)] = pal
    return np.take(lut, labels, axis=0)  # 4x faster than lut[labels] at 640x480


def _to_array(a: np.ndarray) -> array.array:
    out = array.array("B")
    out.frombytes(memoryview(np.ascontiguousarray(a)).cast("B"))  # one copy, not two
    return out


# ---------------------------------------------------------------- camera info


@dataclass(frozen=True)
class CameraModel:
    """A camera from CameraInfo, for the image as published (ROI and binning applied).

    K (3, 3); D the distortion coefficients of ``distortion_model`` (None when all zero: an
    undistorted or rectified image); width, height of the published image; frame_id the optical
    frame the image is in ("" when unknown).
    """

    K: np.ndarray
    D: np.ndarray | None
    width: int
    height: int
    distortion_model: str = "plumb_bob"
    frame_id: str = ""


# distortion_model -> accepted lengths of D (sensor_msgs/distortion_models.hpp; OpenCV also
# writes plumb_bob with 4). An empty D means "no distortion" for every model.
DISTORTION_MODELS: dict[str, tuple[int, ...]] = {
    "plumb_bob": (4, 5),
    "rational_polynomial": (8,),
    "equidistant": (4,),
}


def _field(msg: Any, *names: str) -> Any:
    for n in names:
        v = getattr(msg, n, None)
        if v is not None:
            return v
    return None


def _matrix(value: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    try:
        m = np.asarray(value, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError) as e:
        raise DecodeError("camera_info", f"{name}: {e}") from None
    if not np.isfinite(m).all():
        raise DecodeError("non_finite", f"{name} has non-finite values")
    return m


def _intrinsics(M: np.ndarray, name: str, w: int, h: int) -> None:
    """Refuse a camera matrix that breaks the CameraInfo spec."""
    if not np.allclose(M[2], [0.0, 0.0, 1.0], atol=1e-9, rtol=0.0):
        raise DecodeError("camera_matrix", f"{name}'s last row is {M[2].tolist()}, not [0, 0, 1]")
    if M[0, 0] <= 0 or M[1, 1] <= 0 or M[1, 0] != 0:
        raise DecodeError(
            "camera_matrix", f"{name} is not a calibrated camera matrix (fx, fy must be > 0)"
        )
    cx, cy = M[0, 2], M[1, 2]
    if not (0 <= cx <= w and 0 <= cy <= h):
        raise DecodeError(
            "principal_point", f"{name} principal point ({cx:g}, {cy:g}) outside the {w}x{h} image"
        )


def decode_camera_info(
    msg: Any, rectified: bool = False, max_pixels: int | None = None
) -> CameraModel:
    """sensor_msgs/CameraInfo -> :class:`CameraModel` of the published image.

    ``rectified``: the image is ``image_rect`` (K = P[:, :3], no distortion) instead of the raw
    one (K and D). ROI (in full-resolution pixels, all zero = the whole frame) and binning
    (0 = 1) are applied: fx' = fx / bx, cx' = (cx - x_offset) / bx, the same in y. Anything that
    breaks the message's spec raises :class:`DecodeError`; ``max_pixels`` caps width x height
    before anything is allocated. Accepts ``k``/``d``/``p`` or the ROS 1 ``K``/``D``/``P``.
    """
    try:
        w, h = int(msg.width), int(msg.height)
    except (AttributeError, TypeError, ValueError) as e:
        raise DecodeError("camera_info", str(e)) from None
    if w <= 0 or h <= 0:
        raise DecodeError("camera_info", f"image size {w}x{h}")
    if max_pixels is not None and w * h > max_pixels:
        raise DecodeError("too_large", f"{w}x{h} camera exceeds max_image_pixels={max_pixels}")
    K = _matrix(_field(msg, "k", "K"), (3, 3), "K")
    _intrinsics(K, "K", w, h)
    model = str(getattr(msg, "distortion_model", "") or "")
    d = _field(msg, "d", "D")
    D = _matrix([] if d is None else d, (1, -1), "D").reshape(-1)
    # All-zero coefficients mean no distortion whatever the model says (drivers that never set
    # distortion_model publish "" with five zeros).
    if np.any(D) and model not in DISTORTION_MODELS:
        raise DecodeError(
            "distortion_model",
            f"{model!r} with {D.size} coefficients; known: {list(DISTORTION_MODELS)}",
        )
    if np.any(D) and D.size not in DISTORTION_MODELS[model]:
        raise DecodeError(
            "distortion",
            f"{model} needs {' or '.join(map(str, DISTORTION_MODELS[model]))} "
            f"coefficients, got {D.size}",
        )
    if rectified:
        p = _field(msg, "p", "P")
        if p is None:
            raise DecodeError("projection", "rectified input needs P")
        P = _matrix(p, (3, 4), "P")
        _intrinsics(P[:, :3], "P", w, h)
        K, D = P[:, :3].copy(), np.zeros(0)
    K, w, h = _roi_and_binning(msg, K, w, h)
    return CameraModel(
        K,
        D.copy() if np.any(D) else None,
        w,
        h,
        model if model in DISTORTION_MODELS else "plumb_bob",
        str(getattr(getattr(msg, "header", None), "frame_id", "") or ""),
    )


def _roi_and_binning(msg: Any, K: np.ndarray, w: int, h: int) -> tuple[np.ndarray, int, int]:
    try:
        bx = int(getattr(msg, "binning_x", 0) or 0) or 1
        by = int(getattr(msg, "binning_y", 0) or 0) or 1
        roi = getattr(msg, "roi", None)
        x0, y0, rw, rh = (
            (0, 0, 0, 0)
            if roi is None
            else (int(roi.x_offset), int(roi.y_offset), int(roi.width), int(roi.height))
        )
    except (AttributeError, TypeError, ValueError) as e:
        raise DecodeError("camera_info", f"binning/roi: {e}") from None
    if not (1 <= bx <= w and 1 <= by <= h):
        raise DecodeError("binning", f"binning {bx}x{by} for a {w}x{h} camera")
    if (x0, y0, rw, rh) != (0, 0, 0, 0):
        if min(x0, y0) < 0 or rw <= 0 or rh <= 0 or x0 + rw > w or y0 + rh > h:
            raise DecodeError(
                "roi", f"ROI {rw}x{rh} at ({x0}, {y0}) is not inside the {w}x{h} image"
            )
        w, h = rw, rh
    if (bx, by, x0, y0) == (1, 1, 0, 0):
        return K, w, h
    K = K.copy()
    K[0, 2] -= x0
    K[1, 2] -= y0
    K[0] /= bx
    K[1] /= by
    return K, w // bx, h // by


# ---------------------------------------------------------------- point clouds


class PointFieldSpec(NamedTuple):
    """Constructor kwargs of sensor_msgs/PointField."""

    name: str
    offset: int
    datatype: int
    count: int = 1


def build_pointcloud(points: np.ndarray, labels: np.ndarray | None = None) -> dict[str, Any]:
    """(N, 3|4) float points [+ (N,) uint8 / uint16 labels] -> PointCloud2 kwargs (all but the
    header): one row of float32 x, y, z[, intensity] and a ``label`` field of the labels' width
    (uint8 or uint16, padded to 4 bytes)."""
    pts = np.asarray(points, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] not in (3, 4):
        raise ValueError(f"points must be (N, 3) or (N, 4), got {pts.shape}")
    n, k = pts.shape
    names = ["x", "y", "z", "intensity"][:k]
    specs = [PointFieldSpec(nm, 4 * i, FLOAT32) for i, nm in enumerate(names)]
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        wide = labels.dtype == np.uint16
        labels = labels if wide else labels.astype(np.uint8)
        if labels.size != n:
            raise ValueError(f"{labels.size} labels for {n} points")
        specs.append(PointFieldSpec("label", 4 * k, UINT16 if wide else UINT8))
    point_step = 4 * len(specs)
    # Records of 4-byte slots, filled as one block: the floats, then the label (1 or 2 bytes)
    # and zero padding, written as one uint32 whose first bytes in memory are the label.
    rec = np.empty((n, len(specs)), np.float32)
    rec[:, :k] = pts
    if labels is not None:
        shift = (32 - 8 * labels.dtype.itemsize) * NATIVE_BIGENDIAN
        rec[:, k].view(np.uint32)[:] = labels.astype(np.uint32) << shift
    return {
        "height": 1,
        "width": n,
        "fields": specs,
        "is_bigendian": NATIVE_BIGENDIAN,
        "point_step": point_step,
        "row_step": point_step * n,
        "data": _to_array(rec),
        "is_dense": True,
    }


def labels_for_points(flat: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-point class id from a label image and each point's index into that image padded by
    one pixel all round, ``(v + 1) * (W + 2) + u + 1`` (a projection's ``flat``: off-image
    points fall on the border) -> (N,) of the labels' dtype, :func:`unlabelled` (255 for uint8)
    off-image."""
    h, w = labels.shape
    padded = np.full((h + 2, w + 2), unlabelled(labels.dtype), labels.dtype)
    padded[1:-1, 1:-1] = labels
    return padded.reshape(-1).take(flat)
