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


@dataclass(frozen=True)
class OutputCamera:
    """The camera the labels are published on: frame_id and grid (K at that size, None while
    unknown). Labels, colour and segmentation/camera_info all carry it (see
    :meth:`Pipeline.output_camera` for the rule)."""

    frame_id: str
    width: int
    height: int
    K: np.ndarray | None
    D: np.ndarray | None = None
    distortion_model: str = "plumb_bob"
    source: str = "rgb"  # "rgb" | "camera_info" | "calibration" | "anchor"


@dataclass
class Outputs:
    """Outgoing message contents for one frame (constructor kwargs, headers apart): labels and
    colour on ``camera``'s grid, stamped with the anchor's stamp and ``camera.frame_id``."""

    labels: dict[str, Any]
    color: dict[str, Any] | None
    points: dict[str, Any] | None
    info: dict[str, Any]
    camera: OutputCamera


class Pipeline:
    """Decoding with counted errors, camera model, frame set -> model input, outputs."""

    def __init__(self, settings: InputSettings, palette: list[tuple[int, int, int]]) -> None:
        self.settings = settings
        self.palette = np.asarray(palette, np.uint8)
        self.camera: CameraModel | None = settings.camera  # replaced by camera_info when it comes
        self.camera_frame_id: str | None = None  # rgb/camera_info's header.frame_id
        self._rgb: tuple[str, int, int] | None = None  # the last RGB image's frame_id, w, h
        self._last_scan: tuple[Sample, tuple, LidarScan] | None = None
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
        self.camera_frame_id = getattr(getattr(msg, "header", None), "frame_id", None) or None

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
                out["lidar"] = self._scan(fs.payload("lidar"), cam, (w, h))
        return out

    def _scan(self, sample: Sample, cam: CameraModel, size: tuple[int, int]) -> LidarScan:
        """The LidarScan of a sweep; the previous one again (with its projection, computed once)
        when max_age reuses the same sweep with the same camera and extrinsic."""
        T = self.settings.extrinsic_matrix
        key = (cam.K, cam.D, T, size)
        last = self._last_scan
        if last is not None and last[0] is sample and _same(last[1], key):
            return last[2]
        scan = LidarScan(sample.data, cam.K, T, size, cam.D)
        self._last_scan = (sample, key, scan)
        return scan

    def output_camera(
        self, fs: FrameSet, arrays: dict[str, Any], labels: np.ndarray
    ) -> OutputCamera:
        """The camera the labels go out on, whichever sensor anchors: the RGB camera's grid and
        frame_id, from the newest RGB image seen (so a depth- or LiDAR-anchored frame keeps the
        RGB grid while RGB is stale), with K from rgb/camera_info (or the calibration file)
        scaled to that grid. Before any RGB image: the camera model's own grid (frame_id from
        its camera_info, else the anchor's); without a camera model either, the anchor image's
        own grid and frame_id, K unknown."""
        if "rgb" in arrays:
            h, w = arrays["rgb"].shape[:2]
            self._rgb = (fs.payload("rgb").header.frame_id, int(w), int(h))
        cam = self.camera
        dist = getattr(cam, "distortion_model", "plumb_bob")
        if self._rgb is not None:
            frame_id, w, h = self._rgb
            K = None if cam is None else _scaled(cam, w, h).K
            return OutputCamera(frame_id, w, h, K, None if cam is None else cam.D, dist, "rgb")
        anchor_frame = fs.payload(fs.anchor).header.frame_id
        if cam is not None:
            source = "camera_info" if self.camera_frame_id else "calibration"
            frame_id = self.camera_frame_id or anchor_frame
            return OutputCamera(frame_id, cam.width, cam.height, cam.K, cam.D, dist, source)
        h, w = labels.shape[:2]
        return OutputCamera(anchor_frame, int(w), int(h), None, source="anchor")

    def outputs(
        self, fs: FrameSet, arrays: dict[str, Any], labels: np.ndarray, want_color: bool
    ) -> Outputs:
        """Message contents for a segmented frame set: labels (and colour) resized nearest onto
        the output camera's grid, the LiDAR points labelled by the pixel each projects to."""
        points = None
        # A sweep reused by max_age was published with an earlier frame already: publishing it
        # again would repeat its stamp on segmentation/points.
        if "lidar" in arrays and "lidar" not in fs.reused:
            scan = arrays["lidar"]
            point_labels = labels_for_points(scan.projection.pixel, labels)
            points = build_pointcloud(scan.points, point_labels)
        camera = self.output_camera(fs, arrays, labels)
        labels = resize_labels(labels, camera.width, camera.height)
        color = build_image(colorize(labels, self.palette), "rgb8") if want_color else None
        info = {
            "stamp_ns": fs.stamp_ns,
            "anchor": fs.anchor,
            "modalities": list(arrays),
            "size": [int(labels.shape[1]), int(labels.shape[0])],
            "frame_id": camera.frame_id,
            # How much older each member is than the anchor; "reused": taken by max_age.
            "age_ms": {m: round(a / 1e6, 3) for m, a in fs.ages_ns.items() if m in arrays},
            "reused": sorted(fs.reused),
        }
        return Outputs(build_image(labels, "mono8"), color, points, info, camera)


def _same(a: tuple, b: tuple) -> bool:
    return all(
        (x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
        for x, y in zip(a, b, strict=True)
    )


def resize_labels(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Class ids resampled nearest (pixel centres) to ``width`` x ``height``; the same array when
    the size already fits. Assumes the images are registered (same field of view)."""
    h, w = labels.shape[:2]
    if (w, h) == (width, height):
        return labels
    rows = ((np.arange(height) + 0.5) * h / height).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * w / width).astype(np.intp)
    return labels[np.ix_(np.minimum(rows, h - 1), np.minimum(cols, w - 1))]


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
    "OutputCamera",
    "Outputs",
    "Pipeline",
    "Sample",
    "StartupError",
    "check_segmentor",
    "sync_parameters",
    "synchronizer",
]
