"""Everything the node does between ROS messages and the model, without rclpy.

The node's callbacks call :meth:`Pipeline.decode` and push the result into the synchroniser; its
worker thread calls :meth:`Pipeline.arrays` on a frame set, runs the model and asks
:meth:`Pipeline.outputs` for the outgoing message contents. Keeping this out of node.py lets it
be tested with stand-in messages and reused by the bag tools.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from anyseg_model.representations import DEFAULT_REPRESENTATIONS, LidarScan

from .core.decode import (
    MODALITY_ENCODINGS,
    CameraModel,
    DecodeError,
    build_image,
    build_pointcloud,
    colorize,
    decode_camera_info,
    decode_image,
    decode_pointcloud,
    labels_for_points,
    stamp_ns,
)
from .core.settings import InputSettings, Settings, SyncSettings
from .core.sync import FrameSet, ModalitySynchronizer
from .core.topics import INPUT_TOPICS

MAX_LIDAR_POINTS = 4_000_000


def sync_parameters(settings: SyncSettings) -> dict[str, Any]:
    """:meth:`ModalitySynchronizer.configure` arguments of validated settings."""
    return {
        "slop_ns": settings.slop_ns,
        "timeout_ns": dict(settings.timeout_ns),
        "wait_ns": settings.wait_ns,
        "anchor_priority": settings.anchor_priority,
        "max_age_ns": dict(settings.max_age_ns),
        "max_clock_offset_ns": settings.max_clock_offset_ns,
    }


def synchronizer(settings: SyncSettings) -> ModalitySynchronizer:
    """The synchroniser for validated settings (the node's, and the offline tools'); a live
    change reconfigures it with ``sync.configure(**sync_parameters(new))``."""
    return ModalitySynchronizer(settings.modalities, **sync_parameters(settings))


class StartupError(RuntimeError):
    """The node cannot start as configured; the message is the one line it prints."""


def check_segmentor(settings: Settings, segmentor: Any) -> list[tuple[int, int, int]]:
    """Refuse a checkpoint that does not fit the configured inputs; returns the palette to use."""
    missing = [m for m in settings.modalities if m not in segmentor.modalities]
    if missing:
        raise StartupError(
            f"checkpoint {settings.checkpoint!r} supports modalities {list(segmentor.modalities)}, "
            f"but 'modalities' enables {missing}; set modalities to a subset of the checkpoint's"
        )
    for m in settings.modalities:
        rep = segmentor.representations[m].name
        if rep != DEFAULT_REPRESENTATIONS[m]:
            raise StartupError(
                f"checkpoint {settings.checkpoint!r} encodes {m} as {rep!r}, "
                "which needs pre-rendered "
                f"images; the node's {INPUT_TOPICS[m]} carries raw sensor data "
                f"({DEFAULT_REPRESENTATIONS[m]!r})"
            )
    palette = list(settings.palette) if settings.palette is not None else list(segmentor.palette)
    if len(palette) < len(segmentor.classes):
        raise StartupError(
            f"parameter 'palette' has {len(palette)} colours; the checkpoint has "
            f"{len(segmentor.classes)} classes"
        )
    return palette


@dataclass(frozen=True)
class Sample:
    """What the synchroniser carries per message: its header and decoded data."""

    header: Any
    data: np.ndarray  # image (H, W[, 3]) or LiDAR points (N, 3|4) in the LiDAR frame


@dataclass
class Outputs:
    """Outgoing message contents for one frame (constructor kwargs, headers apart)."""

    labels: dict[str, Any]
    color: dict[str, Any] | None
    points: dict[str, Any] | None
    info: dict[str, Any]


class Pipeline:
    """Decoding with counted errors, camera model, frame set -> model input, outputs."""

    def __init__(self, settings: InputSettings, palette: list[tuple[int, int, int]]) -> None:
        self.settings = settings
        self.palette = np.asarray(palette, np.uint8)
        self.camera: CameraModel | None = settings.camera  # replaced by camera_info when it comes
        self.errors: Counter[str] = Counter()  # "modality/reason" -> count
        self._lock = threading.Lock()  # errors are counted from callbacks and the worker

    def count(self, key: str) -> bool:
        """Count an error; True the first time (log it once)."""
        with self._lock:
            self.errors[key] += 1
            return self.errors[key] == 1

    def error_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.errors)

    def decode(self, modality: str, msg: Any) -> tuple[int, Sample]:
        """A sensor message -> (stamp_ns, Sample). Raises DecodeError (the caller counts it)."""
        stamp = stamp_ns(msg.header)
        if modality == "lidar":
            data = decode_pointcloud(msg, max_points=MAX_LIDAR_POINTS)
        else:
            data = decode_image(msg, MODALITY_ENCODINGS[modality], self.settings.max_image_pixels)
        return stamp, Sample(msg.header, data)

    def set_camera_info(self, msg: Any) -> None:
        self.camera = decode_camera_info(msg)

    def arrays(self, fs: FrameSet) -> dict[str, Any]:
        """The model's input for a frame set. LiDAR needs a camera model: without one (no
        camera_info yet, no calibration_file) it is left out and counted."""
        out: dict[str, Any] = {m: fs.payload(m).data for m in fs.modalities if m != "lidar"}
        if "lidar" in fs.items:
            cam = self.camera
            if cam is None:
                self.count("lidar/no_camera_info")
            else:
                h, w = _reference_size(out, cam)
                cam = _scaled(cam, w, h)
                out["lidar"] = LidarScan(
                    fs.payload("lidar").data, cam.K, self.settings.extrinsic_matrix, (w, h), cam.D
                )
        return out

    def outputs(
        self, fs: FrameSet, arrays: dict[str, Any], labels: np.ndarray, want_color: bool
    ) -> Outputs:
        color = build_image(colorize(labels, self.palette), "rgb8") if want_color else None
        points = None
        if "lidar" in arrays:
            scan = arrays["lidar"]
            point_labels = labels_for_points(scan.projection.pixel, labels)
            points = build_pointcloud(scan.points, point_labels)
        info = {
            "stamp_ns": fs.stamp_ns,
            "anchor": fs.anchor,
            "modalities": list(arrays),
            "size": [int(labels.shape[1]), int(labels.shape[0])],
        }
        return Outputs(build_image(labels, "mono8"), color, points, info)


def _reference_size(arrays: dict[str, Any], cam: CameraModel) -> tuple[int, int]:
    """(H, W) the labels will have: the first image in canonical order, else the camera's."""
    for m in ("rgb", "depth", "event"):
        if m in arrays:
            return arrays[m].shape[:2]
    return cam.height, cam.width


def _scaled(cam: CameraModel, width: int, height: int) -> CameraModel:
    """The camera model for an image of another resolution (same field of view)."""
    if (width, height) == (cam.width, cam.height):
        return cam
    K = cam.K.copy()
    K[0] *= width / cam.width
    K[1] *= height / cam.height
    return replace(cam, K=K, width=width, height=height)


__all__ = [
    "DecodeError",
    "Outputs",
    "Pipeline",
    "Sample",
    "StartupError",
    "check_segmentor",
    "sync_parameters",
    "synchronizer",
]
