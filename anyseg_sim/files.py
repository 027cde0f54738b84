"""Byte-reproducible file output: PNG, NPZ, the raw-frame format and the calibration YAML the
node's parameters take.

``numpy.savez`` stamps every member with the current wall-clock time, so two runs with the same
seed would differ; :func:`save_npz` writes the same members with a fixed timestamp instead.
The raw-frame ``.npz`` (one frame's sensor arrays in the node's wire formats, see
:func:`raw_arrays`) is written by the DELIVER writer and the training cache and read back by
:func:`raw_inputs`, its one reader.
:func:`save_png` writes 8-bit PNGs itself (one "Up" filter for every row and fast zlib): Pillow's
per-row adaptive filtering made PNG writing the slowest part of generating a DELIVER frame.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from anyseg_model.representations import LidarScan, encode_depth, encode_event, encode_lidar

from .world import Frame

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def save_png(path: Path, image: np.ndarray) -> None:
    """uint8 (H, W) grey or (H, W, 3) RGB -> PNG (any PNG reader, Pillow included, reads it)."""
    a = np.ascontiguousarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3):
        raise ValueError(f"save_png needs uint8 (H, W) or (H, W, 3), got {a.dtype} {a.shape}")
    h, w = a.shape[:2]
    rows = a.reshape(h, -1)
    up = np.empty((h, rows.shape[1] + 1), np.uint8)
    up[:, 0] = 2  # filter type "Up": each byte minus the byte above (the first row: above = 0)
    up[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=up[1:, 1:])  # uint8 arithmetic wraps mod 256 as PNG wants

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    colour = 2 if a.ndim == 3 else 0
    header = struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(up.tobytes(), 1))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png + chunk(b"IEND", b""))


# Arrays that compress well (labels, event frames); noisy float data is stored as is, since
# compressing it would cost far more time than the space it saves.
_COMPRESS = {"labels", "event", "lidar_labels"}


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez`` but byte-identical for identical arrays (``np.load`` reads it), and
    atomic (temp file + rename): a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED if name in _COMPRESS else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=1)
    os.replace(tmp, path)


# ---------------------------------------------------------------- the raw-frame .npz


def raw_arrays(frame: Frame, lidar_points: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """One frame's raw sensor arrays, the members of a raw-frame ``.npz``: ``rgb`` (H, W, 3)
    uint8, ``labels`` (H, W) uint8, ``depth`` (H, W) float32 m, ``event`` (H, W) uint8 mono8,
    ``lidar`` (N, 4) float32 points (``lidar_points`` instead of the whole sweep, e.g. only the
    visible ones) with ``lidar_K``, ``lidar_D``, ``lidar_extrinsic`` and ``image_size_hw``."""
    ci = frame.camera_info
    return {
        "rgb": frame.rgb,
        "labels": frame.labels,
        "depth": frame.depth,
        "event": frame.event,
        "lidar": frame.lidar if lidar_points is None else lidar_points,
        "lidar_K": ci.K,
        "lidar_D": ci.D,
        "lidar_extrinsic": frame.lidar_extrinsic,
        "image_size_hw": np.array([ci.height, ci.width]),
    }


def raw_inputs(members: Mapping[str, np.ndarray], modalities: Sequence[str]) -> dict[str, Any]:
    """Raw-frame members (an open ``np.load`` or the dict of :func:`raw_arrays`) -> the model's
    raw input per modality, LiDAR as a :class:`LidarScan`."""
    out: dict[str, Any] = {}
    for m in modalities:
        if m == "lidar":
            h, w = (int(v) for v in members["image_size_hw"])
            dist = members.get("lidar_D")
            K, T = members["lidar_K"], members["lidar_extrinsic"]
            out[m] = LidarScan(members["lidar"], K, T, (w, h), dist)
        else:
            out[m] = members[m]
    return out


def to_uint8(chw: np.ndarray) -> np.ndarray:
    """A representation in [0, 1], (3, H, W) float -> (H, W, 3) uint8."""
    return np.round(np.clip(chw, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(1, 2, 0)


def renderings(frame: Frame) -> dict[str, np.ndarray]:
    """The 3-channel uint8 images a DELIVER-style loader reads for each modality.

    They are the node's default representations (anyseg_model.representations) quantised to 8
    bits, so a model trained on the PNGs through the ``image`` representation sees what a model
    on raw data sees: depth -> (range, inverse depth, valid), event -> (positive, negative, any),
    lidar -> projected (range, intensity, hit); hha -> HHA of the measured depth.
    """
    return {
        "depth": to_uint8(encode_depth(frame.depth)),
        "hha": frame.hha(),
        "event": to_uint8(encode_event(frame.event)),
        "lidar": to_uint8(encode_lidar(frame.lidar_scan())),
    }


def semantic_png(labels: np.ndarray) -> np.ndarray:
    """DELIVER/CARLA label image: red channel = class id + 1 (0 = unlabelled, which a DELIVER
    loader maps to ignore, as it does 255), green and blue zero."""
    red = np.where(labels == 255, 0, labels.astype(np.int32) + 1).astype(np.uint8)
    out = np.zeros((*labels.shape, 3), np.uint8)
    out[..., 0] = red
    return out


def calibration(frame_or_world) -> dict:
    """Calibration in the node's parameter form: ``lidar_extrinsic`` (16 floats, row-major 4x4,
    lidar -> camera optical frame) plus the camera intrinsics."""
    ci = frame_or_world.camera_info
    extrinsic = getattr(frame_or_world, "lidar_extrinsic", None)
    if extrinsic is None:
        extrinsic = frame_or_world.rig.T_cam_lidar
    return {
        "lidar_extrinsic": [float(v) for v in np.asarray(extrinsic).reshape(-1)],
        "camera_frame_id": "camera_optical",
        "lidar_frame_id": "lidar",
        "camera_info": {
            "width": int(ci.width),
            "height": int(ci.height),
            "distortion_model": ci.distortion_model,
            "K": [float(v) for v in ci.K.reshape(-1)],
            "D": [float(v) for v in ci.D.reshape(-1)],
            "P": [float(v) for v in ci.P.reshape(-1)],
        },
    }


def write_calibration(path: Path, frame_or_world) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        "# Synthetic rig calibration. lidar_extrinsic: row-major 4x4 taking LiDAR-frame points\n"
        "# into"
        "# the camera optical frame (the node's `lidar_extrinsic` parameter); camera_info: the\n"
        "# camera's K (3x3), D (plumb_bob) and P (3x4), row-major.\n"
    )
    path.write_text(
        header
        + yaml.safe_dump(calibration(frame_or_world), sort_keys=False, default_flow_style=None)
    )
