"""sensor_msgs/PointCloud2 of real LiDAR drivers -> points, and the labelled cloud back.

Fields are found by name, datatype and offset, never by position: packed records with an
unaligned float64 (Hesai, Livox: 26-byte points), organised clouds with NaN for no return
(Ouster: 48-byte points, width = columns; Velodyne: 22-byte points, width = lasers), any byte
order and row padding. The intensity comes from a field chosen by name (``intensity``,
``reflectivity``, ``signal`` ...) and is divided by the sensor's full scale, so a 0-255
reflectivity does not saturate a model trained on [0, 1]. Every size is checked before anything
is allocated: points per message, bytes per point, the x/y/z fields inside the point and not
overlapping, so a decoded cloud is at most 16 bytes per point and ``max_points`` points.

The labelled cloud keeps the input's bytes, fields (ring, t, ...) and organisation and adds a
``label`` uint32 field (as PCL's PointXYZL), 255 (65535 for models of more than 255 classes)
where a point has no return or falls outside the camera image.
"""

from __future__ import annotations

import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from .decode import (
    POINTFIELD_TYPES,
    DecodeError,
    PointFieldSpec,
    _byte_view,
    unlabelled,
)

MAX_POINT_STEP = 4096  # bytes; the widest driver point type is 64 bytes
UINT32 = 6


@dataclass(frozen=True)
class Cloud:
    """A decoded PointCloud2: the finite points and what is needed to label the input itself.

    points: (N, 3|4) float32 x, y, z [, intensity / scale] of the points with finite x, y, z.
    index: (N,) positions of those points in the height x width grid (row-major).
    raw: (height * width, point_step) uint8, the input's records without row padding.
    """

    points: np.ndarray
    index: np.ndarray
    raw: np.ndarray
    height: int
    width: int
    fields: tuple[PointFieldSpec, ...]
    is_bigendian: bool
    is_dense: bool


def _spec(f: Any) -> PointFieldSpec:
    try:
        return PointFieldSpec(str(f.name), int(f.offset), int(f.datatype), int(f.count))
    except (AttributeError, TypeError, ValueError) as e:
        raise DecodeError("field_layout", f"unreadable PointField ({e})") from None


def _check_field(f: PointFieldSpec, point_step: int) -> int:
    """The field's size in bytes; refuses unknown types and fields outside the point."""
    code = POINTFIELD_TYPES.get(f.datatype)
    if code is None:
        raise DecodeError("field_datatype", f"field {f.name!r} has datatype {f.datatype}")
    size = np.dtype(code).itemsize
    if f.count < 1 or f.offset < 0 or f.offset + size * f.count > point_step:
        raise DecodeError(
            "field_layout",
            f"field {f.name!r} offset {f.offset} count {f.count} does not fit "
            f"point_step {point_step}",
        )
    return size


def decode_cloud(
    msg: Any,
    max_points: int | None = None,
    intensity_field: str = "intensity",
    intensity_scale: float = 1.0,
) -> Cloud:
    """sensor_msgs/PointCloud2 -> :class:`Cloud`; :class:`DecodeError` with a reason if it breaks
    its spec. ``intensity_scale`` multiplies the chosen field (1 / the sensor's full scale);
    without that field the points are x, y, z only. Non-finite intensities become 0."""
    try:
        h, w = int(msg.height), int(msg.width)
        point_step, row_step = int(msg.point_step), int(msg.row_step)
        specs = [_spec(f) for f in msg.fields]
        bigendian = bool(msg.is_bigendian)
    except (AttributeError, TypeError, ValueError) as e:
        raise DecodeError("cloud", f"unreadable PointCloud2 ({e})") from None
    fields = {f.name: f for f in specs}
    if len(fields) != len(specs):
        raise DecodeError("field_layout", f"repeated field names {[f.name for f in specs]}")
    missing = [n for n in ("x", "y", "z") if n not in fields]
    if missing:
        raise DecodeError("missing_field", f"no {missing} among {list(fields)}")
    if h <= 0 or w <= 0:
        raise DecodeError("empty_cloud", f"{w}x{h} points")
    if max_points is not None and h * w > max_points:
        raise DecodeError("too_large", f"{h * w} points > {max_points}")
    if not 0 < point_step <= MAX_POINT_STEP:
        raise DecodeError("point_step", f"point_step {point_step}; allowed 1..{MAX_POINT_STEP}")
    names = ["x", "y", "z"] + ([intensity_field] if intensity_field in fields else [])
    spans = []
    for n in names:
        f = fields[n]
        size = _check_field(f, point_step)
        if n in ("x", "y", "z") and f.count != 1:
            raise DecodeError("field_count", f"field {n!r} has count {f.count}; must be 1")
        spans.append((f.offset, f.offset + size, n))
    spans.sort()
    for (_, end, a), (start, _, b) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise DecodeError("field_overlap", f"fields {a!r} and {b!r} overlap")
    if row_step < w * point_step:
        raise DecodeError("row_step", f"row_step {row_step} < width {w} x point_step {point_step}")
    data = _byte_view(msg.data)
    if data.size != row_step * h:
        raise DecodeError(
            "data_size", f"{data.size} bytes, expected row_step {row_step} x height {h}"
        )

    if row_step != w * point_step:  # padded rows: drop the padding (one copy)
        data = np.ascontiguousarray(data.reshape(h, row_step)[:, : w * point_step])
    raw = data.reshape(h * w, point_step)
    endian = ">" if bigendian else "<"
    formats = [endian + POINTFIELD_TYPES[fields[n].datatype] for n in names]
    offsets = [fields[n].offset for n in names]
    native_f4 = all(np.dtype(f) == np.float32 for f in formats)
    if native_f4 and point_step % 4 == 0 and all(o % 4 == 0 for o in offsets):
        # The common layout (every driver's float32 fields): the columns gathered in one pass,
        # several times faster than a field at a time.
        words = raw.reshape(-1).view(np.float32).reshape(h * w, point_step // 4)
        planar = words.T[[o // 4 for o in offsets]]
    else:
        dt = np.dtype(
            {"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step}
        )
        rec = raw.reshape(-1).view(dt)  # (N,) records viewing the buffer; unaligned is fine
        planar = np.empty((len(names), rec.size), np.float32)
        with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf, then dropped
            for i, n in enumerate(names):
                planar[i] = rec[n]  # converts datatype and byte order
    # (4|3, N) in memory, the points its (N, 4|3) view: the projection reads coordinate rows
    # (:func:`anyseg_model.lidar_encoding.encode_lidar`), and each row is checked contiguously.
    finite = np.isfinite(planar[0])
    finite &= np.isfinite(planar[1])
    finite &= np.isfinite(planar[2])
    index = np.flatnonzero(finite)
    if index.size == 0:
        raise DecodeError("empty_cloud", "no finite point")
    pts = (planar if index.size == planar.shape[1] else planar[:, index]).T
    if len(names) == 4:
        with np.errstate(invalid="ignore", over="ignore"):  # a non-finite intensity reads 0
            if intensity_scale != 1.0:
                pts[:, 3] *= np.float32(intensity_scale)
            bad = ~np.isfinite(pts[:, 3])
        if bad.any():
            pts[bad, 3] = 0.0
    return Cloud(
        pts, index, raw, h, w, tuple(specs), bigendian, bool(getattr(msg, "is_dense", False))
    )


def decode_pointcloud(msg: Any, max_points: int | None = None) -> np.ndarray:
    """sensor_msgs/PointCloud2 -> float32 (N, 4) x, y, z, intensity, or (N, 3) without an
    intensity field; points with a non-finite coordinate are dropped."""
    return decode_cloud(msg, max_points).points


def build_labelled_cloud(cloud: Cloud, labels: np.ndarray) -> dict[str, Any]:
    """PointCloud2 kwargs (all but the header): the input cloud, same organisation and fields,
    plus ``label`` uint32 after its last byte (4-byte aligned). ``labels`` (N,) are the labels
    of ``cloud.points``; points without a return get :func:`~anyseg_ros.core.decode.unlabelled`
    of the labels' dtype (255 for uint8). An input field called ``label`` is replaced."""
    labels = np.asarray(labels).reshape(-1)
    if labels.size != cloud.index.size:
        raise ValueError(f"{labels.size} labels for {cloud.index.size} points")
    n, step = cloud.raw.shape
    offset = -(-step // 4) * 4
    out_step = offset + 4
    if cloud.index.size == n:  # every point has a return: the index is 0..n-1
        full = labels
    else:
        full = np.full(n, unlabelled(labels.dtype), np.uint32)
        full[cloud.index] = labels
    # Each output point as one record (the input point's bytes, then the label): two strided
    # copies of whole records, four times faster than byte columns, written straight into the
    # message's buffer (zero bytes: the padding is defined).
    e = ">" if cloud.is_bigendian else "<"
    dt = np.dtype(
        {
            "names": ["point", "label"],
            "formats": [f"V{step}", e + "u4"],
            "offsets": [0, offset],
            "itemsize": out_step,
        }
    )
    data = array.array("B", b"\0") * (n * out_step)
    rec = np.frombuffer(data, dt)
    rec["point"] = np.ascontiguousarray(cloud.raw).reshape(-1).view(f"V{step}")
    rec["label"] = full
    fields = [f for f in cloud.fields if f.name != "label"]
    fields.append(PointFieldSpec("label", offset, UINT32))
    return {
        "height": cloud.height,
        "width": cloud.width,
        "fields": fields,
        "is_bigendian": cloud.is_bigendian,
        "point_step": out_step,
        "row_step": out_step * cloud.width,
        "data": data,
        "is_dense": cloud.is_dense,
    }


def labels_of_cloud(msg: Any) -> np.ndarray:
    """The ``label`` field of a labelled cloud, (height * width,) uint32 (for tests and tools)."""
    fields = {f.name: _spec(f) for f in msg.fields}
    f = fields.get("label")
    if f is None or f.datatype != UINT32:
        raise DecodeError("missing_field", "no uint32 label field")
    step = int(msg.point_step)
    _check_field(f, step)
    e = ">" if msg.is_bigendian else "<"
    dt = np.dtype(
        {"names": ["label"], "formats": [e + "u4"], "offsets": [f.offset], "itemsize": step}
    )
    data = _byte_view(msg.data)
    h, w, row = int(msg.height), int(msg.width), int(msg.row_step)
    data = np.ascontiguousarray(data.reshape(h, row)[:, : w * step]).reshape(-1)
    return data.view(dt)["label"].astype(np.uint32)


__all__ = [
    "Cloud",
    "build_labelled_cloud",
    "decode_cloud",
    "decode_pointcloud",
    "labels_of_cloud",
]
