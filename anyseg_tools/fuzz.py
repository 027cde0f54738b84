"""Seeded fuzzing of the node's input path, shared by the test suite and ``bench/fuzz.py``.

Each *kind* is one message type in one layout the node takes (an rgb8 Image, a jpeg
CompressedImage, an Ouster cloud, an EVT 3.0 packet, a CameraInfo, ...). :func:`mutate` changes
one field of a valid message (a number to an edge value, bytes cut, extended or flipped, a
string swapped, a float poisoned with NaN / Inf, a point field moved), and :func:`run` sends
the result through the node's real path without ROS: ``Pipeline.decode`` (or
``set_camera_info``), frame assembly (``Pipeline.arrays``) and the model's preprocessing
(``anyseg_model.preprocess.to_batch`` with the raw-sensor representations). Every case ends as
one of:

- ``refused``: a :class:`~anyseg_ros.core.decode.DecodeError` (the node counts it by reason),
  or the assembly left the modality out and counted why;
- ``accepted``: it reached the network input, every value finite;
- ``wrong``: accepted, but the network input is not finite or not (1, 3, H, W);
- ``crash``: any other exception (out of a callback, in the node).

The messages are duck-typed stand-ins (:class:`types.SimpleNamespace`) with exactly the fields of
their ROS types, the way the rosbags and rclpy messages look to the decoders.
"""

from __future__ import annotations

import copy
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace as NS
from typing import Any

import numpy as np

from anyseg_model.preprocess import to_batch
from anyseg_model.representations import DEFAULT_REPRESENTATIONS, Representation
from anyseg_ros import transport
from anyseg_ros.core.decode import POINTFIELD_TYPES, DecodeError, build_image
from anyseg_ros.core.events import Evt3Encoder
from anyseg_ros.core.settings import InputSettings
from anyseg_ros.core.sync import FrameSet
from anyseg_ros.pipeline import Pipeline
from anyseg_sim.robot_writer import OUSTER_FIELDS, OUSTER_STEP

W, H = 16, 12  # small on purpose: the cases are about structure, not size
MAX_PIXELS = 100_000
REPRESENTATIONS = {m: Representation(r) for m, r in DEFAULT_REPRESENTATIONS.items()}
NUMBERS = [0, 1, -1, 2, 3, 7, 255, 256, 65535, 2**31 - 1, 2**32 + 5, -(2**40), 10**9]
STRINGS = [
    "",
    "rgb8",
    "mono16",
    "32FC1",
    "rgb8; png compressed",
    "16UC1; compressedDepth",
    "16UC1; compressedDepth rvl",
    "evt3",
    "libcaer_cmp",
    "bayer_gbrg8",
    "equidistant",
    "rational_polynomial",
    "x" * 300,
]
POINTFIELD = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 8}


def _header() -> NS:
    return NS(stamp=NS(sec=1_700_000_000, nanosec=5_000), frame_id="cam")


def _image(arr: np.ndarray, encoding: str) -> NS:
    kw = build_image(arr, encoding) if encoding in ("rgb8", "mono8", "16UC1", "32FC1") else None
    if kw is None:  # encodings build_image does not write: raw bytes, rows unpadded
        a = np.ascontiguousarray(arr)
        h, w = a.shape[:2]
        kw = dict(height=h, width=w, encoding=encoding, is_bigendian=0, step=a.nbytes // h)
        kw["data"] = a.tobytes()
    else:
        kw["data"] = bytes(kw["data"])
    return NS(header=_header(), **kw)


def _cloud(layout: list[tuple[str, int, str]], step: int, h: int, w: int, rng) -> NS:
    dt = np.dtype(
        {
            "names": [n for n, _, _ in layout],
            "formats": ["<" + c for _, _, c in layout],
            "offsets": [o for _, o, _ in layout],
            "itemsize": step,
        }
    )
    rec = np.zeros(h * w, dt)
    for name, _, code in layout:
        rec[name] = rng.uniform(1, 30, h * w).astype(code)
    rec["x"][:: max(1, h * w // 5)] = np.nan  # no return, as organised clouds mark it
    fields = [NS(name=n, offset=o, datatype=POINTFIELD[c], count=1) for n, o, c in layout]
    return NS(
        header=NS(stamp=NS(sec=1_700_000_000, nanosec=5_000), frame_id="lidar"),
        height=h,
        width=w,
        fields=fields,
        is_bigendian=False,
        point_step=step,
        row_step=step * w,
        data=rec.tobytes(),
        is_dense=False,
    )


XYZI = [("x", 0, "f4"), ("y", 4, "f4"), ("z", 8, "f4"), ("intensity", 12, "f4")]
# The robot-like recording's Ouster layout (one owner: anyseg_sim.robot_writer), numpy codes.
OUSTER = [(name, offset, POINTFIELD_TYPES[t]) for name, offset, t in OUSTER_FIELDS]
HESAI = [
    ("x", 0, "f4"),
    ("y", 4, "f4"),
    ("z", 8, "f4"),
    ("intensity", 12, "f4"),
    ("ring", 16, "u2"),
    ("timestamp", 18, "f8"),
]


def camera_info(w: int = W, h: int = H) -> NS:
    f = float(w)
    return NS(
        header=_header(),
        height=h,
        width=w,
        distortion_model="plumb_bob",
        d=[0.01, -0.001, 0.0, 0.0, 0.0],
        k=[f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0],
        r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
        p=[f, 0.0, w / 2, 0.0, 0.0, f, h / 2, 0.0, 0.0, 0.0, 1.0, 0.0],
        binning_x=0,
        binning_y=0,
        roi=NS(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )


def _compressed(arr: np.ndarray, codec: str) -> NS:
    fmt, data = transport.encode_compressed(arr, codec)
    return NS(header=_header(), format=fmt, data=bytes(data))


def _compressed_depth(depth: np.ndarray, codec: str) -> NS:
    fmt, data = transport.encode_compressed_depth(depth, codec)
    return NS(header=_header(), format=fmt, data=bytes(data))


def _evt3(rng) -> NS:
    t = np.sort(rng.integers(1_000, 9_000, 64))
    words = Evt3Encoder().encode(t, rng.integers(0, W, 64), rng.integers(0, H, 64), t % 2)
    return NS(
        header=_header(),
        height=H,
        width=W,
        seq=0,
        time_base=0,
        encoding="evt3",
        is_bigendian=False,
        events=words.tobytes(),
    )


# kind -> (modality, input parameters, builder of a valid message). "camera_info" is the RGB
# camera's: it is judged by projecting a LiDAR sweep with it.
KINDS: dict[str, tuple[str, dict[str, Any], Callable[[Any], NS]]] = {
    "rgb8": ("rgb", {}, lambda r: _image(r.integers(0, 256, (H, W, 3), np.uint8), "rgb8")),
    "bgr8": ("rgb", {}, lambda r: _image(r.integers(0, 256, (H, W, 3), np.uint8), "bgr8")),
    "rgba8": ("rgb", {}, lambda r: _image(r.integers(0, 256, (H, W, 4), np.uint8), "rgba8")),
    "mono8": ("rgb", {}, lambda r: _image(r.integers(0, 256, (H, W), np.uint8), "mono8")),
    "mono16": ("rgb", {}, lambda r: _image(r.integers(0, 65536, (H, W), np.uint16), "mono16")),
    "yuv422": ("rgb", {}, lambda r: _image(r.integers(0, 256, (H, W * 2), np.uint8), "yuv422")),
    "bayer_rggb8": (
        "rgb",
        {},
        lambda r: _image(r.integers(0, 256, (H, W), np.uint8), "bayer_rggb8"),
    ),
    "jpeg": (
        "rgb",
        {"rgb.transport": "compressed"},
        lambda r: _compressed(r.integers(0, 256, (H, W, 3), np.uint8), "jpeg"),
    ),
    "png": (
        "rgb",
        {"rgb.transport": "compressed"},
        lambda r: _compressed(r.integers(0, 256, (H, W, 3), np.uint8), "png"),
    ),
    "depth_16UC1": (
        "depth",
        {},
        lambda r: _image(r.integers(0, 20_000, (H, W), np.uint16), "16UC1"),
    ),
    "depth_32FC1": (
        "depth",
        {},
        lambda r: _image(r.uniform(0.2, 40, (H, W)).astype("f4"), "32FC1"),
    ),
    "compressedDepth_png": (
        "depth",
        {"depth.transport": "compressedDepth"},
        lambda r: _compressed_depth(r.integers(0, 9_000, (H, W), np.uint16), "png"),
    ),
    "compressedDepth_rvl": (
        "depth",
        {"depth.transport": "compressedDepth"},
        lambda r: _compressed_depth(r.integers(0, 9_000, (H, W), np.uint16), "rvl"),
    ),
    "event_mono8": ("event", {}, lambda r: _image(r.integers(120, 137, (H, W), np.uint8), "mono8")),
    "event_32FC1": (
        "event",
        {},
        lambda r: _image(r.integers(-3, 4, (H, W)).astype("f4"), "32FC1"),
    ),
    "evt3": ("event", {"event.format": "event_packet"}, _evt3),
    "cloud_xyzi": ("lidar", {}, lambda r: _cloud(XYZI, 16, 1, 40, r)),
    "cloud_ouster": (
        "lidar",
        {"lidar.intensity_field": "reflectivity"},
        lambda r: _cloud(OUSTER, OUSTER_STEP, 4, 10, r),
    ),
    "cloud_hesai": ("lidar", {}, lambda r: _cloud(HESAI, 26, 1, 40, r)),
    "camera_info": ("lidar", {}, lambda r: camera_info()),
}


def mutate(msg: NS, rng: np.random.Generator) -> NS:
    """A copy of ``msg`` with one field changed (edge numbers, bytes cut / extended / flipped,
    other strings, NaN / Inf / huge floats, point fields moved, a ROI or a stamp changed)."""
    m = copy.deepcopy(msg)
    names = list(vars(m))
    name = names[rng.integers(len(names))]
    v = getattr(m, name)
    if name == "header":
        v.stamp.nanosec = NUMBERS[rng.integers(len(NUMBERS))]
    elif isinstance(v, (bytes, bytearray)):
        b = bytearray(v)
        op = rng.integers(5)
        if op == 0 and b:
            b = b[: rng.integers(len(b))]
        elif op == 1:
            b += bytes(rng.integers(0, 256, rng.integers(1, 64), dtype=np.uint8))
        elif op == 2 and len(b) >= 4:  # a float-looking word poisoned (NaN / Inf bit patterns)
            i = 4 * rng.integers(len(b) // 4)
            b[i : i + 4] = [b"\x00\x00\xc0\x7f", b"\x00\x00\x80\x7f", b"\xff\xff\xff\xff"][
                rng.integers(3)
            ]
        elif b:
            for i in rng.integers(0, len(b), rng.integers(1, 8)):
                b[i] = rng.integers(256)
        setattr(m, name, bytes(b))
    elif isinstance(v, bool):
        setattr(m, name, not v)
    elif isinstance(v, int):
        setattr(m, name, NUMBERS[rng.integers(len(NUMBERS))])
    elif isinstance(v, str):
        setattr(m, name, STRINGS[rng.integers(len(STRINGS))])
    elif isinstance(v, list) and v and isinstance(v[0], float):
        w = list(v)
        w[rng.integers(len(w))] = [float("nan"), float("inf"), 0.0, -5.0, 1e30][rng.integers(5)]
        setattr(m, name, w if rng.random() < 0.8 else w[: rng.integers(len(w))])
    elif isinstance(v, list):  # point fields
        f = v[rng.integers(len(v))]
        key = ["offset", "datatype", "count", "name"][rng.integers(4)]
        f.__dict__[key] = [0, 1, 2, 4, 9, 13, 47, "x", "z", "intensity"][rng.integers(10)]
    elif isinstance(v, NS):  # roi
        v.__dict__[["x_offset", "y_offset", "width", "height"][rng.integers(4)]] = NUMBERS[
            rng.integers(len(NUMBERS))
        ]
    return m


@dataclass
class Tally:
    """Outcomes of the cases of one kind: ``counts`` by outcome (accepted, refused,
    refused_later, wrong, crash), refusals by reason, and the first few wrong / crashed cases."""

    kind: str
    counts: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)

    @property
    def cases(self) -> int:
        return sum(self.counts.values())

    def add(self, outcome: str, detail: str = "") -> None:
        self.counts[outcome] += 1
        if outcome.startswith("refused"):
            self.refused[detail] += 1
        elif outcome == "wrong" and len(self.wrong) < 5:
            self.wrong.append(detail)
        elif outcome == "crash" and len(self.crashes) < 5:
            self.crashes.append(detail)


def _pipeline(params: dict[str, Any]) -> Pipeline:
    values = {"lidar_extrinsic": list(np.eye(4).reshape(-1)), "max_image_pixels": MAX_PIXELS}
    return Pipeline(InputSettings.from_parameters({**values, **params}), [])


def _network_input(pipe: Pipeline, modality: str, decoded: tuple[int, Any] | None) -> str:
    """'' if the frame set built from ``decoded`` reaches the network as finite (1, 3, H, W)
    tensors (or is left out and counted); else what is wrong."""
    if decoded is None:  # an event packet that did not close a slice of the stream yet
        return ""
    stamp, sample = decoded
    arrays = pipe.arrays(FrameSet(stamp, modality, {modality: (stamp, sample)}))
    if not arrays:
        return ""  # left out by the assembly, counted by reason (e.g. no camera model)
    batch = to_batch(arrays, REPRESENTATIONS, size=(H, W))
    for m, x in batch.items():
        if tuple(x.shape) != (1, 3, H, W):
            return f"{m}: network input of shape {tuple(x.shape)}"
        if not bool(x.isfinite().all()):
            return f"{m}: non-finite network input"
    return ""


def run_case(kind: str, msg: NS) -> tuple[str, str]:
    """(outcome, detail) of one message of ``kind`` through decode, assembly and
    preprocessing (see the module docstring)."""
    modality, params, _ = KINDS[kind]
    pipe = _pipeline(params)
    try:
        if kind == "camera_info":
            pipe.set_camera_info(msg)
            decoded = pipe.decode("lidar", KINDS["cloud_xyzi"][2](np.random.default_rng(0)))
        else:
            pipe.set_camera_info(camera_info())
            decoded = pipe.decode(modality, msg)
        wrong = _network_input(pipe, modality, decoded)
    except DecodeError as e:
        return "refused", e.reason
    except Exception as e:
        last = traceback.format_exc().strip().splitlines()[-3:]
        return "crash", f"{type(e).__name__}: {e} | " + " | ".join(last)
    if wrong:
        return "wrong", wrong
    left_out = sorted(pipe.error_counts())
    return ("refused_later", left_out[0]) if left_out else ("accepted", "")


def run(kind: str, cases: int, seed: int = 0) -> Tally:
    """``cases`` mutated messages of ``kind`` (reproducible from ``seed``)."""
    rng = np.random.default_rng([seed, zlib.crc32(kind.encode())])
    build = KINDS[kind][2]
    tally = Tally(kind)
    base = build(rng)
    for _ in range(cases):
        tally.add(*run_case(kind, mutate(base, rng)))
    return tally
