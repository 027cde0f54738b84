"""PointCloud2 of real LiDAR drivers, built byte for byte in each driver's layout."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros.core.decode import UNLABELLED, DecodeError
from anyseg_ros.core.pointclouds import (
    MAX_POINT_STEP,
    build_labelled_cloud,
    decode_cloud,
    labels_of_cloud,
)

CODES = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 8}
# (name, offset, numpy code) and point_step of each driver's default point type.
LAYOUTS = {
    "ouster": (
        [
            ("x", 0, "f4"),
            ("y", 4, "f4"),
            ("z", 8, "f4"),
            ("intensity", 16, "f4"),
            ("t", 20, "u4"),
            ("reflectivity", 24, "u2"),
            ("ring", 26, "u2"),
            ("ambient", 28, "u2"),
            ("range", 32, "u4"),
        ],
        48,
    ),
    "velodyne": (
        [
            ("x", 0, "f4"),
            ("y", 4, "f4"),
            ("z", 8, "f4"),
            ("intensity", 12, "f4"),
            ("ring", 16, "u2"),
            ("time", 18, "f4"),
        ],
        22,
    ),
    "hesai": (
        [
            ("x", 0, "f4"),
            ("y", 4, "f4"),
            ("z", 8, "f4"),
            ("intensity", 12, "f4"),
            ("ring", 16, "u2"),
            ("timestamp", 18, "f8"),
        ],
        26,
    ),
    "livox": (
        [
            ("x", 0, "f4"),
            ("y", 4, "f4"),
            ("z", 8, "f4"),
            ("intensity", 12, "f4"),
            ("tag", 16, "u1"),
            ("line", 17, "u1"),
            ("timestamp", 18, "f8"),
        ],
        26,
    ),
}


def driver_cloud(layout, step, h, w, invalid=(), big=False, values=None):
    """A stand-in PointCloud2 in ``layout``; ``invalid`` flat indices get NaN x, y, z."""
    e = ">" if big else "<"
    dt = np.dtype(
        {
            "names": [f[0] for f in layout],
            "formats": [e + f[2] for f in layout],
            "offsets": [f[1] for f in layout],
            "itemsize": step,
        }
    )
    rng = np.random.default_rng(len(layout) + step)
    rec = np.zeros(h * w, dt)
    for name, _, code in layout:
        rec[name] = rng.uniform(1, 200, h * w).astype(code) if values is None else values[name]
    for n in "xyz":
        rec[n][list(invalid)] = np.nan
    fields = [NS(name=n, offset=o, datatype=CODES[c], count=1) for n, o, c in layout]
    return NS(
        height=h,
        width=w,
        fields=fields,
        is_bigendian=big,
        point_step=step,
        row_step=step * w,
        data=rec.tobytes(),
        is_dense=not invalid,
    ), rec


@pytest.mark.parametrize("driver", sorted(LAYOUTS))
def test_each_driver_layout_decodes_and_labels_keep_its_fields(driver):
    layout, step = LAYOUTS[driver]
    h, w = (4, 8) if driver in ("ouster", "velodyne") else (1, 32)
    invalid = (3, 9, 17) if driver in ("ouster", "velodyne") else ()
    msg, rec = driver_cloud(layout, step, h, w, invalid)
    cloud = decode_cloud(msg)
    keep = np.setdiff1d(np.arange(h * w), invalid)
    np.testing.assert_array_equal(cloud.index, keep)
    for i, n in enumerate(("x", "y", "z", "intensity")):
        np.testing.assert_array_equal(cloud.points[:, i], rec[n][keep].astype(np.float32))

    labels = np.arange(len(keep), dtype=np.uint32) % 7
    out = build_labelled_cloud(cloud, labels)
    assert (out["height"], out["width"]) == (h, w)  # organisation kept
    assert [f.name for f in out["fields"]] == [f[0] for f in layout] + ["label"]
    label = out["fields"][-1]
    assert label.datatype == 6 and label.offset % 4 == 0 and label.offset >= step
    back = NS(**{**out, "data": bytes(out["data"])})
    got = labels_of_cloud(back)
    assert got[list(invalid)].tolist() == [UNLABELLED] * len(invalid)
    np.testing.assert_array_equal(got[keep], labels)
    # The input's bytes (ring, t, timestamps ...) are there untouched.
    raw = np.frombuffer(bytes(out["data"]), np.uint8).reshape(h * w, out["point_step"])
    assert raw[:, :step].tobytes() == rec.tobytes()
    assert not raw[:, step : label.offset].any()  # the alignment padding is zeros


def test_a_big_endian_cloud_gets_big_endian_labels():
    layout, step = LAYOUTS["velodyne"]
    msg, rec = driver_cloud(layout, step, 1, 6, invalid=(2,), big=True)
    cloud = decode_cloud(msg)
    np.testing.assert_array_equal(cloud.points[:, 0], rec["x"][[0, 1, 3, 4, 5]])
    out = build_labelled_cloud(cloud, np.array([5, 6, 7, 8, 9], np.uint8))
    assert out["is_bigendian"]
    got = labels_of_cloud(NS(**{**out, "data": bytes(out["data"])}))
    assert got.tolist() == [5, 6, UNLABELLED, 7, 8, 9]
    raw = np.frombuffer(bytes(out["data"]), np.uint8).reshape(6, out["point_step"])
    assert raw[0, -4:].tolist() == [0, 0, 0, 5]  # most significant byte first


def test_intensity_field_by_name_with_the_sensors_scale():
    layout, step = LAYOUTS["ouster"]
    values = {n: np.zeros(6) for n, _, _ in layout}
    values.update(x=np.arange(1, 7), reflectivity=np.array([0, 51, 102, 153, 204, 255]))
    msg, _ = driver_cloud(layout, step, 1, 6, values=values)
    cloud = decode_cloud(msg, intensity_field="reflectivity", intensity_scale=1 / 255)
    np.testing.assert_allclose(cloud.points[:, 3], [0, 0.2, 0.4, 0.6, 0.8, 1.0], rtol=1e-6)
    assert decode_cloud(msg, intensity_field="signal").points.shape == (6, 3)  # no such field


def test_big_endian_hesai_with_unaligned_float64():
    layout, step = LAYOUTS["hesai"]
    little, rec = driver_cloud(layout, step, 1, 10)
    big, _ = driver_cloud(
        layout, step, 1, 10, big=True, values={n: rec[n] for n in rec.dtype.names}
    )
    np.testing.assert_array_equal(decode_cloud(big).points, decode_cloud(little).points)


def test_non_finite_intensity_becomes_zero():
    layout, step = LAYOUTS["velodyne"]
    msg, rec = driver_cloud(layout, step, 1, 5)
    rec["intensity"][2] = np.nan
    msg.data = rec.tobytes()
    assert decode_cloud(msg).points[2, 3] == 0.0


def _xyz(offsets, codes=("f4",) * 3, step=12, counts=(1, 1, 1), n=4):
    fields = [
        NS(name=c, offset=o, datatype=CODES[t], count=k)
        for c, o, t, k in zip("xyz", offsets, codes, counts, strict=True)
    ]
    return NS(
        height=1,
        width=n,
        fields=fields,
        is_bigendian=False,
        point_step=step,
        row_step=step * n,
        data=bytes(step * n),
        is_dense=True,
    )


@pytest.mark.parametrize(
    "msg, reason",
    [
        (_xyz((0, 2, 8)), "field_overlap"),  # y starts inside x
        (_xyz((0, 0, 0), ("i1",) * 3, step=1), "field_overlap"),  # point_step 1: 16x on decode
        (_xyz((0, 4, 8), counts=(3, 1, 1), step=24), "field_count"),
        (_xyz((0, 4, 8), step=10), "field_layout"),  # z does not fit the point
        (_xyz((0, 4, 8), step=MAX_POINT_STEP + 4), "point_step"),
        (_xyz((0, 4, 8)), "field_datatype"),  # z gets datatype 9 below
        (_xyz((0, 4, 8), n=5_000), "too_large"),
    ],
)
def test_clouds_that_break_their_spec_are_refused_before_decoding(msg, reason):
    if reason == "field_datatype":
        msg.fields[2].datatype = 9
    with pytest.raises(DecodeError) as e:
        decode_cloud(msg, max_points=4_096)
    assert e.value.reason == reason, e.value


def test_a_labelled_cloud_replaces_an_input_label_field():
    layout = [("x", 0, "f4"), ("y", 4, "f4"), ("z", 8, "f4"), ("label", 12, "u4")]
    msg, _ = driver_cloud(layout, 16, 1, 3)
    out = build_labelled_cloud(decode_cloud(msg), np.array([1, 2, 3]))
    assert [f.name for f in out["fields"]] == ["x", "y", "z", "label"]
    assert out["fields"][-1].offset == 16
