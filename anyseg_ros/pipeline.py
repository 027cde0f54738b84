"""Everything the node does between ROS messages and the model, without rclpy.

The node's callbacks call :meth:`Pipeline.decode` and push the result into the synchroniser; its
worker thread calls :meth:`Pipeline.arrays` on a frame set, runs the model and asks
:meth:`Pipeline.outputs` for the outgoing message contents. Keeping this out of node.py lets it
be tested with stand-in messages and reused by the bag tools.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from anyseg_model.representations import DEFAULT_REPRESENTATIONS, LidarScan

from . import transport
from .core import compiled
from .core.decode import (
    MODALITY_ENCODINGS,
    CameraModel,
    DecodeError,
    build_image,
    build_pointcloud,
    colorize,
    decode_camera_info,
    decode_image,
    labels_for_points,
    stamp_ns,
)
from .core.events import EventStream, Evt3Decoder
from .core.pointclouds import build_labelled_cloud, decode_cloud
from .core.rvl import decode_rvl
from .core.settings import InputSettings, Settings, SyncSettings
from .core.sync import FrameSet, ModalitySynchronizer
from .core.tf import TfError, TfTree
from .core.topics import (
    CAMERA_INFO_TOPICS,
    EVENTS_TOPIC,
    INPUT_TOPICS,
    TF_STATIC_TOPIC,
    TF_TOPIC,
    transport_topic,
)
from .registration import (
    lidar_scan,
    register_depth,
    register_event,
    same_grid,
    scaled,
)

MAX_LIDAR_POINTS = 4_000_000
EVENT_MESSAGE_TYPES = {
    "event_packet": "event_camera_msgs/msg/EventPacket",
    "event_array": "dvs_msgs/msg/EventArray",
}


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
    change reconfigures it with ``sync.configure(**sync_parameters(new))``. Waiting messages
    hold at most ``max_buffer_mb`` of decoded data together (:func:`sample_bytes`)."""
    return ModalitySynchronizer(
        settings.modalities,
        **sync_parameters(settings),
        max_buffer_bytes=settings.max_buffer_bytes,
        payload_bytes=sample_bytes,
    )


def sample_bytes(sample: Any) -> int:
    """Bytes a waiting :class:`Sample` keeps alive (its arrays; views of the message count as
    the message's data, so this is an upper bound of what it holds)."""
    total = 0 if sample.data is None else sample.data.nbytes
    if sample.cloud is not None:
        total += sample.cloud.raw.nbytes
    return total


class InputTopic(NamedTuple):
    """One subscription the inputs need: what it carries, its topic and message type."""

    kind: str  # "sensor" | "camera_info" | "tf" | "tf_static"
    modality: str | None
    topic: str
    msgtype: str


def input_topics(settings: InputSettings, modalities: tuple[str, ...]) -> list[InputTopic]:
    """The subscriptions for these settings: each sensor on its transport's topic, each
    camera's camera_info, and /tf + /tf_static when something needs tf (the LiDAR extrinsic
    without a parameter; depth / event that are not marked registered)."""
    out = []
    for m in modalities:
        if m == "lidar":
            out.append(InputTopic("sensor", m, INPUT_TOPICS[m], "sensor_msgs/msg/PointCloud2"))
        elif m == "event" and settings.event_format != "frame":
            out.append(
                InputTopic("sensor", m, EVENTS_TOPIC, EVENT_MESSAGE_TYPES[settings.event_format])
            )
        else:
            tr = settings.transports[m]
            kind = "Image" if tr == "raw" else "CompressedImage"
            out.append(InputTopic("sensor", m, transport_topic(m, tr), f"sensor_msgs/msg/{kind}"))
    cams = [m for m in ("rgb", "depth", "event") if m in modalities]
    if "rgb" not in cams:
        cams.insert(0, "rgb")  # the output camera is the RGB camera; the LiDAR projects into it
    for m in cams:
        out.append(
            InputTopic("camera_info", m, CAMERA_INFO_TOPICS[m], "sensor_msgs/msg/CameraInfo")
        )
    if needs_tf(settings, modalities):
        out.append(InputTopic("tf", None, TF_TOPIC, "tf2_msgs/msg/TFMessage"))
        out.append(InputTopic("tf_static", None, TF_STATIC_TOPIC, "tf2_msgs/msg/TFMessage"))
    return out


def needs_tf(settings: InputSettings, modalities: tuple[str, ...]) -> bool:
    lidar = "lidar" in modalities and settings.lidar_extrinsic is None
    reg = any(m in modalities and not settings.registered.get(m) for m in ("depth", "event"))
    return lidar or reg


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


def lidar_max_intensity(segmentor: Any) -> float:
    """The checkpoint's LiDAR intensity scale, which ``lidar.max_intensity`` rescales onto."""
    rep = segmentor.representations.get("lidar")
    return float(rep.params.get("max_intensity", 1.0)) if rep is not None else 1.0


@dataclass(frozen=True)
class Sample:
    """What the synchroniser carries per message: its header and decoded data."""

    header: Any
    data: np.ndarray | None  # image (H, W[, 3]) or LiDAR points (N, 3|4); None: an event slice
    cloud: Any = None  # LiDAR: the decoded core.pointclouds.Cloud (to label the input cloud)


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
    """Decoding with counted errors, camera models, tf, registration, frame set -> model input,
    outputs.

    ``model_max_intensity``: the checkpoint's LiDAR ``max_intensity`` (its representation
    parameter); with ``lidar.max_intensity`` set, intensities are rescaled onto it.
    """

    def __init__(
        self,
        settings: InputSettings,
        palette: list[tuple[int, int, int]],
        model_max_intensity: float = 1.0,
    ) -> None:
        self.settings = s = settings
        self.palette = np.asarray(palette, np.uint8)
        self.cameras: dict[str, CameraModel] = {}  # from each camera's camera_info
        self.tf = TfTree()
        self._rgb: tuple[str, int, int] | None = None  # the last RGB image's frame_id, w, h
        self._last_scan: tuple[Sample, tuple, LidarScan] | None = None
        self.errors: Counter[str] = Counter()  # "modality/reason" -> count
        self.notes: list[str] = []  # things to say once (the node logs them as they come)
        self._noted: set[str] = set()
        self._lock = threading.Lock()  # errors are counted from callbacks and the worker
        self.intensity_scale = model_max_intensity / s.max_intensity if s.max_intensity > 0 else 1.0
        self.events = (
            EventStream(s.max_image_pixels, horizon_ns=max(2 * s.event_window_ns, 2 * 10**9))
            if s.event_format != "frame"
            else None
        )
        self._last_slice: int | None = None
        # A compiled decoder's first use on a machine compiles it (seconds; cached after):
        # here, not on the first message. Transports and the event format are read-only.
        rvl = s.transports.get("depth") == "compressedDepth"
        if self.events is not None:
            Evt3Decoder().decode(b"", 1, 1)
        if rvl:
            decode_rvl(b"", 0)
        self._compiled_decoders = self.events is not None or rvl
        self.extrinsic_source = s.extrinsic_source or ("tf" if s.lidar_extrinsic is None else "")
        self._tf_extrinsic = False  # the last LiDAR extrinsic came from tf

    # ------------------------------------------------------------------ bookkeeping

    def count(self, key: str) -> bool:
        """Count an error; True the first time (log it once)."""
        with self._lock:
            self.errors[key] += 1
            return self.errors[key] == 1

    def error_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.errors)

    def note(self, key: str, text: str) -> None:
        """Say ``text`` once (a refusal or an assumption the user should know about)."""
        with self._lock:
            if key not in self._noted:
                self._noted.add(key)
                self.notes.append(text)

    def take_notes(self) -> list[str]:
        with self._lock:
            out, self.notes = self.notes, []
            return out

    def input_status(self) -> list[tuple[str, str]]:
        """Key/values for /diagnostics and reports: where the extrinsic comes from, transports."""
        s = self.settings
        out = [(f"{m}.transport", t) for m, t in s.transports.items()]
        out.append(("event.format", s.event_format))
        if self._compiled_decoders:
            out.append(
                ("decoders", "compiled" if compiled.available() else "uncompiled (no numba: slow)")
            )
        if self.extrinsic_source:
            out.append(("lidar_extrinsic_source", self.extrinsic_source))
        if self.events is not None:
            out.append(("event_overflow", str(self.events.overflow)))
        return out

    @property
    def camera(self) -> CameraModel | None:
        """The RGB camera (the LiDAR is projected into it): camera_info, else the calibration."""
        return self.cameras.get("rgb", self.settings.camera)

    # ------------------------------------------------------------------ callbacks

    def decode(self, modality: str, msg: Any) -> tuple[int, Sample] | None:
        """A sensor message -> (stamp_ns, Sample); None when an event packet only extends the
        current slice of the stream. Raises DecodeError (the caller counts it)."""
        s = self.settings
        if modality == "lidar":
            stamp = stamp_ns(msg.header)
            cloud = decode_cloud(msg, MAX_LIDAR_POINTS, s.intensity_field, self.intensity_scale)
            return stamp, Sample(msg.header, cloud.points, cloud)
        if modality == "event" and self.events is not None:
            return self._event_slice(msg)
        stamp = stamp_ns(msg.header)
        allowed = MODALITY_ENCODINGS[modality]
        tr = s.transports.get(modality, "raw")
        if tr == "compressed":
            data = transport.decode_compressed(msg, allowed, s.max_image_pixels)
        elif tr == "compressedDepth":
            data = transport.decode_compressed_depth(msg, s.max_image_pixels)
        else:
            data = decode_image(msg, allowed, s.max_image_pixels)
        return stamp, Sample(msg.header, data)

    def _event_slice(self, msg: Any) -> tuple[int, Sample] | None:
        """Event packets go into the stream; the synchroniser gets one sample per slop_ns of
        stream time, stamped with the time the stream has reached (frame sets then take the
        events of the window ending at their own stamp, see :meth:`arrays`)."""
        end = self.events.add_packet(msg)
        if end is None:
            return None
        if self._last_slice is not None and 0 <= end - self._last_slice < self.settings.slop_ns:
            return None
        self._last_slice = end
        return end, Sample(msg.header, None)

    def set_camera_info(self, msg: Any, modality: str = "rgb") -> None:
        s = self.settings
        self.cameras[modality] = decode_camera_info(
            msg, s.rectified.get(modality, False), s.max_image_pixels
        )

    def add_tf(self, msg: Any, static: bool) -> None:
        before = self.tf.rejected
        self.tf.add_message(msg, static)
        if self.tf.rejected > before:
            self.count("tf/rejected_transform")

    # ------------------------------------------------------------------ frame assembly

    def arrays(self, fs: FrameSet) -> dict[str, Any]:
        """The model's input for a frame set: images registered onto the RGB grid (or left out
        and counted), event streams accumulated, LiDAR as a scan in the RGB camera (left out and
        counted without a camera model or extrinsic)."""
        out: dict[str, Any] = {}
        for m in fs.modalities:
            if m == "lidar":
                continue
            sample = fs.payload(m)
            data = sample.data
            if data is None:  # an event slice: the events of the window ending at fs's stamp
                data = self.events.frame(fs.stamp_ns, self.settings.event_window_ns)
            if m in ("depth", "event"):
                data = self._registered(m, sample, data, fs.stamp_ns)
                if data is None:
                    continue
            out[m] = data
        if "lidar" in fs.items:
            scan = self._lidar(fs, out)
            if scan is not None:
                out["lidar"] = scan
        return out

    def _rgb_frame(self, fs: FrameSet) -> str:
        cam = self.camera
        if cam is not None and cam.frame_id:
            return cam.frame_id
        return str(getattr(fs.payload("rgb").header, "frame_id", "")) if "rgb" in fs.items else ""

    def _registered(self, m: str, sample: Sample, data: np.ndarray, stamp: int) -> Any:
        """``data`` on the RGB camera's grid, or None (counted, said once) when it cannot be."""
        rgb = self.camera
        frame = str(getattr(sample.header, "frame_id", "") or "")
        rgb_frame = rgb.frame_id if rgb is not None else ""
        if self.settings.registered.get(m):
            if frame and rgb_frame and frame != rgb_frame:
                self.note(
                    f"registered/{m}",
                    f"{m}: frame_id {frame!r} is not the RGB camera's {rgb_frame!r}; used as "
                    f"registered because {m}.registered is true",
                )
            return data
        own = self.cameras.get(m)
        if rgb is None or (own is None and (not frame or not rgb_frame or frame == rgb_frame)):
            return data  # nothing says it is elsewhere: today's assumption (registered)
        if own is None:
            return self._refuse(
                m,
                "no_camera_info",
                f"{m} is in frame {frame!r}, not the RGB camera's "
                f"{rgb_frame!r}, and no {CAMERA_INFO_TOPICS[m]} came to register it",
            )
        src = own.frame_id or frame
        try:
            T = (
                np.eye(4)
                if not src or not rgb_frame or src == rgb_frame
                else self.tf.lookup(rgb_frame, src, stamp)
            )
        except TfError as e:
            return self._refuse(m, "no_transform", f"cannot register {m} onto RGB: {e}")
        h, w = data.shape[:2]
        if same_grid(scaled(own, w, h), scaled(rgb, w, h), T):
            return data
        if m == "depth":
            if own.D is not None and np.any(own.D):
                return self._refuse(
                    m,
                    "distorted",
                    "depth registration needs a rectified depth image "
                    "(depth.rectified: true with image_rect, or depth.registered: true)",
                )
            return register_depth(data, own, rgb, T)
        out = register_event(data, own, rgb, T)
        if out is None:
            return self._refuse(
                m,
                "not_registered",
                "the event camera does not share the RGB camera's optical "
                "centre and events have no depth to reproject with; publish registered events "
                "and set event.registered: true",
            )
        return out

    def _refuse(self, m: str, reason: str, text: str) -> None:
        if self.count(f"{m}/{reason}"):
            hint = (
                f" (if {m} is registered already, set {m}.registered: true)" if m != "lidar" else ""
            )
            self.note(f"refuse/{m}/{reason}", f"{m} left out of frames: {text}{hint}")
        return None

    def _lidar(self, fs: FrameSet, images: dict[str, Any]) -> Any:
        cam = self.camera
        if cam is None:
            self.count("lidar/no_camera_info")
            return None
        sample = fs.payload("lidar")
        T = self.settings.extrinsic_matrix
        if T is None:
            lidar_frame = str(getattr(sample.header, "frame_id", "") or "")
            try:
                T = self.tf.lookup(self._rgb_frame(fs), lidar_frame, fs.items["lidar"][0])
            except TfError as e:
                self._refuse("lidar", "no_transform", str(e))
                return None
            if not self._tf_extrinsic:
                self._tf_extrinsic = True
                self.extrinsic_source = f"tf {lidar_frame} -> {self._rgb_frame(fs)}"
                self.note("extrinsic", f"lidar extrinsic from {self.extrinsic_source}")
        h, w = _reference_size(images, cam)
        return self._scan(sample, scaled(cam, w, h), T, (w, h))

    def _scan(
        self, sample: Sample, cam: CameraModel, T: np.ndarray, size: tuple[int, int]
    ) -> LidarScan:
        """The LidarScan of a sweep; the previous one again (with its projection, computed once)
        when max_age reuses the same sweep with the same camera and extrinsic."""
        key = (cam.K, cam.D, T, size)
        last = self._last_scan
        if last is not None and last[0] is sample and _same(last[1], key):
            return last[2]
        scan = lidar_scan(sample.data, cam, T, size)
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
            K = None if cam is None else scaled(cam, w, h).K
            return OutputCamera(frame_id, w, h, K, None if cam is None else cam.D, dist, "rgb")
        anchor_frame = fs.payload(fs.anchor).header.frame_id
        if cam is not None:
            source = "camera_info" if cam.frame_id else "calibration"
            frame_id = cam.frame_id or anchor_frame
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
            point_labels = labels_for_points(scan.projection.flat, labels)
            cloud = fs.payload("lidar").cloud
            # The input cloud's own fields and organisation, plus a label per point.
            points = (
                build_labelled_cloud(cloud, point_labels)
                if cloud is not None
                else build_pointcloud(scan.points, point_labels)
            )
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
        # Class ids as they are: mono8, or mono16 for a model of more than 255 classes.
        encoding = "mono16" if labels.dtype == np.uint16 else "mono8"
        return Outputs(build_image(labels, encoding), color, points, info, camera)


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


__all__ = [
    "DecodeError",
    "InputTopic",
    "input_topics",
    "OutputCamera",
    "Outputs",
    "Pipeline",
    "Sample",
    "StartupError",
    "check_segmentor",
    "sync_parameters",
    "synchronizer",
]
