"""The node's parameters: declared from ONE table, validated into frozen settings by concern.

:data:`PARAMETERS` is the single place a parameter is named, typed, defaulted and described; the
node declares exactly these, reads their values into a plain dict and calls
:meth:`Settings.from_parameters` before any subscription exists. The settings are split by who
uses them: :class:`SyncSettings` (the synchroniser: slop, wait, timeouts, anchors) and
:class:`InputSettings` (decoding and frame assembly: size limit, LiDAR calibration) are built
from the same values without a checkpoint, so offline tools take only what they use;
:class:`Settings` (the node) composes both with the model's settings. Every invalid value raises
:class:`SettingsError` naming the parameter, the bad value and what is allowed.

Per-sensor timeouts are ``<modality>.timeout_ms`` (YAML: ``lidar: {timeout_ms: 300.0}``), 0 meaning
"use timeout_ms". A plain ``timeout_ms.lidar`` would clash with ``timeout_ms`` itself in YAML,
where one key cannot be both a number and a mapping.

No YAML parser here (stdlib + numpy only): the caller passes ``read_yaml`` to load
``calibration_file``.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .decode import CameraModel
from .sync import DEFAULT_ANCHOR_PRIORITY
from .topics import MODALITIES


@dataclass(frozen=True)
class Param:
    """One node parameter. ``type`` is a ROS parameter type name (see :data:`PARAM_TYPES`).
    ``live``: it may change while the node runs (validated again, applied from the next frame
    set); the others are read-only once the node has started."""

    name: str
    default: Any
    type: str
    description: str
    live: bool = False


PARAM_TYPES = (
    "bool",
    "integer",
    "double",
    "string",
    "integer_array",
    "double_array",
    "string_array",
)

PARAMETERS: tuple[Param, ...] = (
    Param("checkpoint", "", "string", "Path to the self-describing model checkpoint (required)."),
    Param(
        "device",
        "auto",
        "string",
        "Inference device: auto (CUDA if available, else CPU), cpu, cuda or cuda:N.",
    ),
    Param(
        "backend",
        "torch",
        "string",
        "Inference backend: torch, or onnxruntime (TensorRT / CUDA providers on a CUDA device "
        "when installed, else CPU). Preprocessing runs in torch on the device either way.",
    ),
    Param(
        "onnx_dir",
        "",
        "string",
        "With backend onnxruntime: the anyseg-export directory of this checkpoint; empty "
        "exports each modality subset from the checkpoint when it first comes.",
    ),
    Param(
        "threads",
        0,
        "integer",
        "CPU threads of torch and onnxruntime; 0: half the cores available, at least 1.",
    ),
    Param(
        "modalities",
        list(MODALITIES),
        "string_array",
        "Enabled inputs, a subset of rgb, depth, event, lidar; the checkpoint must support each.",
    ),
    Param(
        "slop_ms",
        15.0,
        "double",
        "Stamps of one frame set span less than this. "
        "Keep it below half the fastest sensor period.",
        live=True,
    ),
    Param(
        "timeout_ms",
        500.0,
        "double",
        "A sensor silent for longer than this is stale (not waited for).",
        live=True,
    ),
    *(
        Param(f"{m}.timeout_ms", 0.0, "double", f"Stale timeout for {m}; 0 uses timeout_ms.", True)
        for m in MODALITIES
    ),
    *(
        Param(
            f"{m}.max_age_ms",
            0.0,
            "double",
            f"A frame set without a {m} message within slop takes the newest {m} message up to "
            "this old, even one an earlier set used; 0: each message serves one set.",
            True,
        )
        for m in MODALITIES
    ),
    Param(
        "wait_ms",
        50.0,
        "double",
        "How long an anchor frame waits for a late message of an alive sensor "
        "before going without it.",
        live=True,
    ),
    Param(
        "max_clock_offset_ms",
        500.0,
        "double",
        "A sensor whose stamps differ from the node's clock by more than this (median) is "
        "reported at ERROR level and not waited for; 0 disables the check.",
        live=True,
    ),
    Param(
        "anchor_priority",
        list(DEFAULT_ANCHOR_PRIORITY),
        "string_array",
        "Modalities that may anchor a frame set, best first; the first alive one anchors.",
        live=True,
    ),
    Param(
        "lidar_extrinsic",
        [],
        "double_array",
        "16 floats, row-major 4x4 transform from the LiDAR frame to the camera optical frame; "
        "overrides tf. Empty: looked up in tf (/tf_static, /tf) from the cloud's frame_id to "
        "rgb/camera_info's.",
        live=True,
    ),
    Param(
        "calibration_file",
        "",
        "string",
        "YAML with lidar_extrinsic (16 floats) and optionally camera K, D, width, height; "
        "an alternative to lidar_extrinsic (camera values are used until camera_info arrives).",
    ),
    Param(
        "max_buffer_mb",
        256.0,
        "double",
        "Decoded sensor data waiting in the synchroniser, all sensors together, is kept under "
        "this many MiB: beyond it the oldest waiting message is dropped (counted as memory).",
    ),
    Param(
        "max_image_pixels",
        8_294_400,
        "integer",
        "Images (and camera_info sizes, event sensors) with more pixels are rejected (counted).",
        live=True,
    ),
    # How each input arrives (docs/architecture.md section 2; README "Inputs").
    Param(
        "rgb.transport",
        "raw",
        "string",
        "raw: sensor_msgs/Image on rgb/image; compressed: CompressedImage on rgb/image/compressed.",
    ),
    Param(
        "depth.transport",
        "raw",
        "string",
        "raw: Image on depth/image; compressedDepth: CompressedImage on "
        "depth/image/compressedDepth (png or rvl).",
    ),
    Param(
        "event.transport",
        "raw",
        "string",
        "For event.format frame: raw Image on event/image or compressed on event/image/compressed.",
    ),
    Param(
        "event.format",
        "frame",
        "string",
        "frame: accumulated event images on event/image; event_packet: "
        "event_camera_msgs/EventPacket (evt3, mono, libcaer, libcaer_cmp) or event_array: "
        "dvs_msgs/EventArray on event/events, accumulated over event.window_ms.",
    ),
    Param(
        "event.window_ms",
        1000.0 / 30.0,
        "double",
        "Events of the window ending at the frame set's stamp make its event frame "
        "(event_packet / event_array); the synthetic world's frames cover 1/30 s.",
    ),
    *(
        Param(
            f"{m}.rectified",
            False,
            "bool",
            f"{m} is image_rect: its camera is camera_info's P (no distortion), not K and D.",
        )
        for m in ("rgb", "depth", "event")
    ),
    *(
        Param(
            f"{m}.registered",
            False,
            "bool",
            f"{m} images are already on the RGB camera's pixel grid (no registration; a warning "
            "once if the frame_ids differ). false: registered with "
            f"{m}/camera_info and tf, or refused.",
        )
        for m in ("depth", "event")
    ),
    Param(
        "lidar.intensity_field",
        "intensity",
        "string",
        "PointCloud2 field read as intensity (intensity, reflectivity, signal, ...).",
    ),
    Param(
        "lidar.max_intensity",
        0.0,
        "double",
        "Full scale of that field on this sensor (e.g. 255 for 8-bit reflectivity): it is "
        "rescaled to the checkpoint's max_intensity. 0: used as it is.",
    ),
    Param(
        "publish_color",
        True,
        "bool",
        "Publish segmentation/color (rgb8) when someone subscribes.",
        live=True,
    ),
    Param(
        "palette",
        [],
        "integer_array",
        "Flat r,g,b triples per class id; empty uses the checkpoint's palette.",
        live=True,
    ),
)

PARAMETER_NAMES: tuple[str, ...] = tuple(p.name for p in PARAMETERS)
MAX_BUFFER_MB = 65536.0
# Durations: below 1 us a value is not meaningful (nanosecond rounding would make it 0), above
# an hour it is a mistake.
MIN_DURATION_MS, MAX_DURATION_MS = 0.001, 3_600_000.0
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
BACKENDS = ("torch", "onnxruntime")  # anyseg_model.backends.BACKENDS (core imports no torch)


class SettingsError(ValueError):
    """An invalid parameter value; the message names the parameter, the value, what is allowed."""

    def __init__(self, name: str, value: Any, allowed: str) -> None:
        self.name, self.value = name, value
        super().__init__(f"parameter {name!r} = {value!r}: {allowed}")


def closest_name(name: str) -> str | None:
    """The valid parameter name nearest to a misspelled one, if any is near."""
    close = difflib.get_close_matches(name, PARAMETER_NAMES, n=1)
    return close[0] if close else None


def unknown_name_hint(name: str) -> str:
    """``"did you mean 'slop_ms'? "`` or ``""``."""
    close = closest_name(name)
    return f"did you mean {close!r}? " if close else ""


def check_names(values: Mapping[str, Any]) -> None:
    """Refuse a parameter name the table does not know, naming the closest valid one."""
    unknown = sorted(set(values) - set(PARAMETER_NAMES))
    if unknown:
        name = unknown[0]
        raise SettingsError(
            name,
            values[name],
            f"unknown parameter; {unknown_name_hint(name)}valid: {list(PARAMETER_NAMES)}",
        )


def _with_defaults(values: Mapping[str, Any]) -> dict[str, Any]:
    check_names(values)
    return {p.name: values.get(p.name, p.default) for p in PARAMETERS}


def _enabled(v: Mapping[str, Any]) -> tuple[str, ...]:
    """The enabled modalities, canonical order."""
    modalities = _modalities(v, "modalities")
    if not modalities:
        raise SettingsError(
            "modalities", v["modalities"], f"needs at least one of {list(MODALITIES)}"
        )
    return tuple(m for m in MODALITIES if m in modalities)


@dataclass(frozen=True)
class SyncSettings:
    """What the synchroniser needs; durations in integer nanoseconds. An offline caller (bag
    evaluation, bag training) builds it from parameter values without any checkpoint."""

    modalities: tuple[str, ...]  # enabled, canonical order
    slop_ns: int
    timeout_ns: Mapping[str, int]  # every enabled modality, overrides applied
    wait_ns: int
    anchor_priority: tuple[str, ...]  # enabled modalities only
    max_age_ns: Mapping[str, int]  # every enabled modality; 0 = each message used once
    max_clock_offset_ns: int  # 0 = not checked
    max_buffer_bytes: int  # decoded data of all waiting messages together

    @classmethod
    def from_parameters(cls, values: Mapping[str, Any]) -> SyncSettings:
        """Validate the synchroniser's parameters (missing ones take :data:`PARAMETERS` defaults;
        other known parameters are ignored)."""
        v = _with_defaults(values)
        ordered = _enabled(v)
        slop = _duration_ns(v, "slop_ms", zero=False)
        timeout = _duration_ns(v, "timeout_ms", zero=False)
        wait = _duration_ns(v, "wait_ms", zero=True)
        timeouts = {m: _duration_ns(v, f"{m}.timeout_ms", zero=True) or timeout for m in ordered}
        ages = {m: _duration_ns(v, f"{m}.max_age_ms", zero=True) for m in ordered}
        offset = _duration_ns(v, "max_clock_offset_ms", zero=True)
        priority = _modalities(v, "anchor_priority")
        anchors = tuple(m for m in priority if m in ordered)
        if not anchors:
            raise SettingsError(
                "anchor_priority",
                v["anchor_priority"],
                f"must list at least one enabled modality of {list(ordered)}",
            )
        mb = _number(v, "max_buffer_mb", low=1.0, inclusive=True)
        if mb > MAX_BUFFER_MB:
            raise SettingsError("max_buffer_mb", mb, f"must be at most {MAX_BUFFER_MB:.0f}")
        return cls(ordered, slop, timeouts, wait, anchors, ages, offset, int(mb * 2**20))


TRANSPORTS: dict[str, tuple[str, ...]] = {
    "rgb": ("raw", "compressed"),
    "depth": ("raw", "compressedDepth"),
    "event": ("raw", "compressed"),
}
EVENT_FORMATS = ("frame", "event_packet", "event_array")


@dataclass(frozen=True)
class InputSettings:
    """What decoding and frame assembly need: the size limit, the LiDAR calibration and how
    every input arrives."""

    lidar_extrinsic: tuple[float, ...] | None  # 16 floats row-major; None: tf (or no LiDAR)
    camera: CameraModel | None  # from calibration_file, until camera_info arrives
    max_image_pixels: int
    transports: Mapping[str, str] = field(default_factory=lambda: dict.fromkeys(TRANSPORTS, "raw"))
    event_format: str = "frame"
    event_window_ns: int = 33_333_333
    rectified: Mapping[str, bool] = field(default_factory=dict)
    registered: Mapping[str, bool] = field(default_factory=dict)
    intensity_field: str = "intensity"
    max_intensity: float = 0.0  # 0: intensities as they are
    extrinsic_source: str = ""  # "parameter lidar_extrinsic" / "calibration_file PATH" / ""
    slop_ns: int = 15_000_000  # event streams are cut into pieces at most this long

    @property
    def extrinsic_matrix(self) -> np.ndarray | None:
        if self.lidar_extrinsic is None:
            return None
        return np.asarray(self.lidar_extrinsic).reshape(4, 4)

    @classmethod
    def from_parameters(
        cls, values: Mapping[str, Any], read_yaml: Callable[[str], Any] | None = None
    ) -> InputSettings:
        """Validate the input parameters; ``read_yaml(path)`` loads ``calibration_file``."""
        v = _with_defaults(values)
        lidar = "lidar" in _enabled(v)
        extrinsic, camera = _calibration(v, read_yaml)
        pixels = v["max_image_pixels"]
        if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels <= 0:
            raise SettingsError("max_image_pixels", pixels, "must be a positive integer")
        source = ""
        if lidar and extrinsic is not None:
            path = _string(v, "calibration_file")
            given = isinstance(v["lidar_extrinsic"], (list, tuple)) and len(v["lidar_extrinsic"])
            source = "parameter lidar_extrinsic" if given else f"calibration_file {path}"
        return cls(
            extrinsic if lidar else None,
            camera,
            pixels,
            **_input_choices(v),
            extrinsic_source=source,
        )


@dataclass(frozen=True)
class Settings:
    """The node's validated settings: its own, plus the synchroniser's and the inputs'."""

    checkpoint: str
    device: str
    publish_color: bool
    palette: tuple[tuple[int, int, int], ...] | None  # None: the checkpoint's
    sync: SyncSettings
    inputs: InputSettings
    backend: str = "torch"
    onnx_dir: str = ""
    threads: int = 0  # 0: the model package's default

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.sync.modalities

    @classmethod
    def from_parameters(
        cls,
        values: Mapping[str, Any],
        read_yaml: Callable[[str], Any] | None = None,
        tf_available: bool = False,
    ) -> Settings:
        """Validate parameter values (missing ones take :data:`PARAMETERS` defaults).

        ``read_yaml(path)`` loads ``calibration_file`` (e.g. ``yaml.safe_load`` of the file).
        ``tf_available``: the node can subscribe to /tf (tf2_msgs is installed), so LiDAR may
        take its extrinsic from tf; otherwise it needs lidar_extrinsic or a calibration_file.
        """
        v = _with_defaults(values)
        checkpoint = _string(v, "checkpoint")
        if not checkpoint:
            raise SettingsError("checkpoint", checkpoint, "must be the path of a model checkpoint")
        device = _string(v, "device")
        if not _DEVICE.match(device):
            raise SettingsError("device", device, "allowed: auto, cpu, cuda, cuda:N")
        sync = SyncSettings.from_parameters(v)
        inputs = InputSettings.from_parameters(v, read_yaml)
        if "lidar" in sync.modalities and inputs.lidar_extrinsic is None and not tf_available:
            raise SettingsError(
                "lidar_extrinsic",
                v["lidar_extrinsic"],
                "lidar is enabled: give 16 floats here or a calibration_file with lidar_extrinsic "
                "(tf cannot supply it: tf2_msgs is not installed)",
            )
        publish_color = v["publish_color"]
        if not isinstance(publish_color, bool):
            raise SettingsError("publish_color", publish_color, "must be true or false")
        backend, onnx_dir, threads = _backend(v)
        return cls(
            checkpoint,
            device,
            publish_color,
            _palette(v["palette"]),
            sync,
            inputs,
            backend,
            onnx_dir,
            threads,
        )


def flatten_parameters(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML -> ROS parameter names: ``{'lidar': {'timeout_ms': 300}}`` ->
    ``{'lidar.timeout_ms': 300}``. A mapping under a known name stays a value."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and name not in PARAMETER_NAMES:
            out.update(flatten_parameters(v, name + "."))
        else:
            out[name] = v
    return out


def nest_parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """ROS parameter names -> nested YAML: ``lidar.timeout_ms`` -> ``{'lidar': {'timeout_ms'}}``
    (what a ``ros__parameters`` block holds)."""
    nested: dict[str, Any] = {}
    for name, value in values.items():
        *parents, leaf = name.split(".")
        d = nested
        for p in parents:
            d = d.setdefault(p, {})
        d[leaf] = value
    return nested


# ---------------------------------------------------------------- helpers


def _duration_ns(v: Mapping[str, Any], name: str, zero: bool) -> int:
    """A duration parameter in ms -> integer ns; ``zero``: 0 is allowed (it means something)."""
    ms = _number(v, name, low=0.0, inclusive=zero)
    if ms and not MIN_DURATION_MS <= ms <= MAX_DURATION_MS:
        raise SettingsError(
            name,
            v[name],
            f"must be {'0 or ' if zero else ''}between {MIN_DURATION_MS} ms (1 us) and "
            f"{MAX_DURATION_MS:.0f} ms (an hour)",
        )
    return int(round(ms * 1e6))


def _string(v: Mapping[str, Any], name: str) -> str:
    if not isinstance(v[name], str):
        raise SettingsError(name, v[name], "must be a string")
    return v[name].strip()


def _number(v: Mapping[str, Any], name: str, low: float, inclusive: bool) -> float:
    x = v[name]
    bound = f">= {low}" if inclusive else f"> {low}"
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise SettingsError(name, x, f"must be a finite number {bound}")
    if x < low or (x == low and not inclusive):
        raise SettingsError(name, x, f"must be {bound}")
    return float(x)


def _modalities(v: Mapping[str, Any], name: str) -> tuple[str, ...]:
    x = v[name]
    if not isinstance(x, (list, tuple)) or not all(isinstance(m, str) for m in x):
        raise SettingsError(name, x, f"must be a list of names from {list(MODALITIES)}")
    bad = [m for m in x if m not in MODALITIES]
    if bad:
        raise SettingsError(name, list(x), f"unknown {bad}; valid: {list(MODALITIES)}")
    if len(set(x)) != len(x):
        raise SettingsError(name, list(x), "must not repeat a modality")
    return tuple(x)


def _extrinsic(name: str, x: Any) -> tuple[float, ...]:
    try:
        m = np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        m = np.zeros(0)
    if m.size != 16 or not np.isfinite(m).all():
        raise SettingsError(name, x, "must be 16 finite floats (row-major 4x4 lidar->camera)")
    T = m.reshape(4, 4)
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-6):
        raise SettingsError(name, x, "last row must be 0 0 0 1 (row-major; is it transposed?)")
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-3) or np.linalg.det(R) < 0:
        raise SettingsError(name, x, "the upper-left 3x3 must be a rotation matrix")
    return tuple(float(a) for a in m)


def _calibration(
    v: Mapping[str, Any], read_yaml: Callable[[str], Any] | None
) -> tuple[tuple[float, ...] | None, CameraModel | None]:
    """(extrinsic, camera) from lidar_extrinsic and/or calibration_file."""
    param = v["lidar_extrinsic"]
    empty = isinstance(param, (list, tuple)) and len(param) == 0
    extrinsic = None if empty else _extrinsic("lidar_extrinsic", param)
    path = _string(v, "calibration_file")
    if not path:
        return extrinsic, None
    if read_yaml is None:
        raise SettingsError("calibration_file", path, "no YAML reader was given to load it")
    try:
        doc = read_yaml(path)
    except Exception as e:  # the reader's own error (missing file, bad YAML) in one line
        raise SettingsError(
            "calibration_file", path, f"cannot be read ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(doc, Mapping):
        raise SettingsError("calibration_file", path, "must hold a YAML mapping")
    if "lidar_extrinsic" in doc:
        if extrinsic is not None:
            raise SettingsError(
                "lidar_extrinsic", param, f"also given by calibration_file {path!r}; set only one"
            )
        extrinsic = _extrinsic(f"{path}: lidar_extrinsic", doc["lidar_extrinsic"])
    # "camera_info" is what anyseg_sim writes; "camera" and top-level keys are accepted too.
    cam = doc.get("camera_info", doc.get("camera", doc))
    K = cam.get("K", cam.get("camera_matrix")) if isinstance(cam, Mapping) else None
    if K is None:
        return extrinsic, None
    try:
        Km = np.asarray(K, dtype=np.float64).reshape(3, 3)
        D = np.asarray(cam.get("D", cam.get("distortion")) or [], dtype=np.float64).reshape(-1)
        w, h = int(cam["width"]), int(cam["height"])
    except (KeyError, TypeError, ValueError) as e:
        raise SettingsError(
            "calibration_file", path, f"camera needs K (9 floats), width, height [, D] ({e})"
        ) from None
    if not np.isfinite(Km).all() or Km[0, 0] <= 0 or Km[1, 1] <= 0 or w <= 0 or h <= 0:
        raise SettingsError(
            "calibration_file", path, "camera K must have fx, fy > 0 and width, height > 0"
        )
    model = str(cam.get("distortion_model", "plumb_bob") or "plumb_bob")
    return extrinsic, CameraModel(Km, D if np.any(D) else None, w, h, model)


def _choice(v: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    x = v[name]
    if not isinstance(x, str) or x.strip() not in allowed:
        raise SettingsError(name, x, f"allowed: {', '.join(allowed)}")
    return x.strip()


def _flag(v: Mapping[str, Any], name: str) -> bool:
    if not isinstance(v[name], bool):
        raise SettingsError(name, v[name], "must be true or false")
    return v[name]


def _input_choices(v: Mapping[str, Any]) -> dict[str, Any]:
    """The per-input choices of InputSettings (transport, event format, LiDAR intensity)."""
    field_name = _string(v, "lidar.intensity_field")
    if not re.match(r"^\w+$", field_name):
        raise SettingsError("lidar.intensity_field", field_name, "must be a PointField name")
    return {
        "transports": {m: _choice(v, f"{m}.transport", t) for m, t in TRANSPORTS.items()},
        "event_format": _choice(v, "event.format", EVENT_FORMATS),
        "event_window_ns": _duration_ns(v, "event.window_ms", zero=False),
        "rectified": {m: _flag(v, f"{m}.rectified") for m in ("rgb", "depth", "event")},
        "registered": {m: _flag(v, f"{m}.registered") for m in ("depth", "event")},
        "intensity_field": field_name,
        "max_intensity": _number(v, "lidar.max_intensity", low=0.0, inclusive=True),
        "slop_ns": _duration_ns(v, "slop_ms", zero=False),
    }


def _backend(v: Mapping[str, Any]) -> tuple[str, str, int]:
    backend = _string(v, "backend")
    if backend not in BACKENDS:
        raise SettingsError("backend", backend, f"allowed: {', '.join(BACKENDS)}")
    onnx_dir = _string(v, "onnx_dir")
    if onnx_dir and backend != "onnxruntime":
        raise SettingsError(
            "onnx_dir", onnx_dir, f"is used by backend onnxruntime only, not {backend}"
        )
    threads = v["threads"]
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= 256:
        raise SettingsError("threads", threads, "must be an integer 0..256 (0: default)")
    return backend, onnx_dir, threads


def _palette(x: Any) -> tuple[tuple[int, int, int], ...] | None:
    if not isinstance(x, (list, tuple)):
        raise SettingsError("palette", x, "must be a list of integers (r,g,b triples)")
    vals = list(x)
    if not vals:
        return None
    if len(vals) % 3 or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in vals
    ):
        raise SettingsError(
            "palette", vals, "must be r,g,b triples of integers 0..255 (length a multiple of 3)"
        )
    return tuple(tuple(vals[i : i + 3]) for i in range(0, len(vals), 3))
