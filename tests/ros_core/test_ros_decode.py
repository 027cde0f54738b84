"""decode.py with stand-in messages (SimpleNamespace) and round trips through real message types."""

from __future__ import annotations

import array
import time
from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros.core.decode import (
    MODALITY_ENCODINGS,
    UNLABELLED,
    DecodeError,
    PointFieldSpec,
    build_image,
    build_pointcloud,
    colorize,
    decode_camera_info,
    decode_image,
    labels_for_points,
    stamp_ns,
)
from anyseg_ros.core.pointclouds import decode_pointcloud

RNG = np.random.default_rng(0)


def image_msg(
    arr: np.ndarray, encoding: str, bigendian: bool = False, pad: int = 0, data_type=bytes
):
    """A stand-in Image with ``pad`` bytes of padding per row."""
    a = np.asarray(arr)
    if a.dtype.itemsize > 1:
        a = a.astype(a.dtype.newbyteorder(">" if bigendian else "<"))
    h, w = a.shape[:2]
    rows = a.reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((h, pad), 0xEE, np.uint8)], axis=1)
    raw = rows.tobytes()
    data = {
        bytes: raw,
        list: list(raw),
        np.ndarray: np.frombuffer(raw, np.uint8),
        array.array: array.array("B", raw),
    }[data_type]
    return NS(
        height=h, width=w, encoding=encoding, is_bigendian=bigendian, step=rows.shape[1], data=data
    )


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("data_type", [bytes, list, np.ndarray, array.array])
def test_rgb8_with_row_padding(data_type):
    img = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = decode_image(image_msg(img, "rgb8", pad=3, data_type=data_type))
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, img)


def test_bgr8_is_converted_to_rgb_and_mono8_is_2d():
    img = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(image_msg(img[..., ::-1], "bgr8")), img)
    mono = RNG.integers(0, 256, (4, 6), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(image_msg(mono, "mono8", pad=2)), mono)


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_16uc1_and_32fc1_honour_endianness(bigendian):
    mm = RNG.integers(0, 60000, (6, 5), dtype=np.uint16)
    out = decode_image(
        image_msg(mm, "16UC1", bigendian=bigendian, pad=4), allowed=MODALITY_ENCODINGS["depth"]
    )
    assert out.dtype == np.uint16 and out.dtype.isnative
    np.testing.assert_array_equal(out, mm)
    m = RNG.uniform(0.1, 80, (6, 5)).astype(np.float32)
    m[0, 0], m[1, 1], m[2, 2] = np.nan, np.inf, -np.inf  # REP 118 invalid values pass through
    out = decode_image(
        image_msg(m, "32FC1", bigendian=bigendian), allowed=MODALITY_ENCODINGS["depth"]
    )
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, m)


def test_signed_event_frames():
    ev = RNG.integers(-5, 6, (3, 4)).astype(np.int16)
    np.testing.assert_array_equal(
        decode_image(image_msg(ev, "16SC1", bigendian=True), allowed=MODALITY_ENCODINGS["event"]),
        ev,
    )


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda m: setattr(m, "encoding", "bayer_rggb16"), "encoding"),
        (lambda m: setattr(m, "encoding", "yuv422"), "geometry"),  # odd width for 4:2:2
        (lambda m: setattr(m, "encoding", "16UC1"), "encoding"),  # not allowed on the rgb topic
        (lambda m: setattr(m, "data", m.data[:-1]), "data_size"),
        (lambda m: setattr(m, "data", m.data + b"\0"), "data_size"),
        (lambda m: setattr(m, "step", 3 * m.width - 1), "step"),
        (lambda m: setattr(m, "height", 0), "empty"),
        (lambda m: (setattr(m, "height", 10_000), setattr(m, "width", 10_000)), "too_large"),
    ],
)
def test_malformed_images_raise_one_error_type_with_a_reason(mutate, reason):
    msg = image_msg(np.zeros((4, 5, 3), np.uint8), "rgb8")
    mutate(msg)
    with pytest.raises(DecodeError) as e:
        decode_image(msg, allowed=MODALITY_ENCODINGS["rgb"], max_pixels=1_000_000)
    assert e.value.reason == reason


def test_build_image_round_trip_and_errors():
    for arr, enc in [
        (RNG.integers(0, 256, (3, 4, 3), dtype=np.uint8), "rgb8"),
        (RNG.integers(0, 30, (3, 4), dtype=np.uint8), "mono8"),
        (RNG.integers(0, 9000, (3, 4), dtype=np.uint16), "16UC1"),
        (RNG.uniform(0, 9, (3, 4)).astype(np.float32), "32FC1"),
    ]:
        kw = build_image(arr, enc)
        assert isinstance(kw["data"], array.array) and kw["data"].typecode == "B"
        np.testing.assert_array_equal(decode_image(NS(**kw)), arr)
    with pytest.raises(ValueError, match="mono8"):
        build_image(np.zeros((2, 2), np.uint16), "mono8")


def test_stamp_ns():
    assert stamp_ns(NS(stamp=NS(sec=3, nanosec=7))) == 3_000_000_007
    assert stamp_ns(NS(sec=0, nanosec=1)) == 1
    with pytest.raises(DecodeError) as e:
        stamp_ns(NS(sec=1, nanosec=2_000_000_000))
    assert e.value.reason == "header"


def test_colorize():
    labels = np.array([[0, 1], [2, 200]], np.uint8)
    out = colorize(labels, [(10, 20, 30), (40, 50, 60), (70, 80, 90)])
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 1].tolist() == [40, 50, 60] and out[1, 1].tolist() == [0, 0, 0]


# ---------------------------------------------------------------- camera info


def test_camera_info():
    K = [500.0, 0, 320, 0, 510.0, 240, 0, 0, 1]
    cam = decode_camera_info(
        NS(
            k=K,
            d=[0.1, -0.05, 0.001, 0.002, 0.0],
            width=640,
            height=480,
            distortion_model="plumb_bob",
        )
    )
    assert cam.K.shape == (3, 3) and cam.K[1, 1] == 510.0 and (cam.width, cam.height) == (640, 480)
    np.testing.assert_allclose(cam.D, [0.1, -0.05, 0.001, 0.002, 0.0])
    assert (
        decode_camera_info(
            NS(k=K, d=[0.0] * 5, width=640, height=480, distortion_model="plumb_bob")
        ).D
        is None
    )
    assert decode_camera_info(NS(K=K, D=[], width=640, height=480)).D is None  # ROS 1 names


@pytest.mark.parametrize(
    "kw, reason",
    [
        ({"k": [0.0] * 9}, "camera_matrix"),  # uncalibrated
        ({"k": [1.0] * 8}, "camera_info"),
        ({"width": 0}, "camera_info"),
        ({"distortion_model": "equidistant", "d": [0.1, 0, 0, 0, 0]}, "distortion"),
        ({"distortion_model": "rational_polynomial", "d": [0.1, 0, 0, 0, 0]}, "distortion"),
        ({"distortion_model": "kannala", "d": [0.1, 0, 0, 0]}, "distortion_model"),
    ],
)
def test_bad_camera_info(kw, reason):
    base = {
        "k": [500.0, 0, 320, 0, 500.0, 240, 0, 0, 1],
        "d": [],
        "width": 640,
        "height": 480,
        "distortion_model": "plumb_bob",
    }
    with pytest.raises(DecodeError) as e:
        decode_camera_info(NS(**{**base, **kw}))
    assert e.value.reason == reason


# ---------------------------------------------------------------- point clouds


def cloud_msg(
    points: np.ndarray,
    layout: list[tuple[str, int, str]],
    point_step: int,
    height: int = 1,
    row_pad: int = 0,
    bigendian: bool = False,
    is_dense: bool = True,
):
    """A stand-in PointCloud2 with fields (name, offset, numpy code) written at those offsets."""
    codes = {"i1": 1, "u1": 2, "i2": 3, "u2": 4, "i4": 5, "u4": 6, "f4": 7, "f8": 8}
    n = len(points)
    width = n // height
    e = ">" if bigendian else "<"
    dt = np.dtype(
        {
            "names": [f[0] for f in layout],
            "formats": [e + f[2] for f in layout],
            "offsets": [f[1] for f in layout],
            "itemsize": point_step,
        }
    )
    rec = np.zeros(n, dt)
    for i, (name, _, _) in enumerate(layout):
        rec[name] = points[:, i]
    rows = rec.view(np.uint8).reshape(height, width * point_step)
    rows = np.concatenate([rows, np.full((height, row_pad), 0xAB, np.uint8)], axis=1)
    fields = [NS(name=nm, offset=off, datatype=codes[c], count=1) for nm, off, c in layout]
    return NS(
        height=height,
        width=width,
        fields=fields,
        is_bigendian=bigendian,
        point_step=point_step,
        row_step=rows.shape[1],
        data=rows.tobytes(),
        is_dense=is_dense,
    )


XYZI = [("x", 0, "f4"), ("y", 4, "f4"), ("z", 8, "f4"), ("intensity", 12, "f4")]


def test_standard_xyzi_cloud():
    pts = RNG.uniform(-50, 50, (100, 4)).astype(np.float32)
    out = decode_pointcloud(cloud_msg(pts, XYZI, 16))
    assert out.shape == (100, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out, pts)


def test_odd_layouts_padding_endianness_and_datatypes():
    pts = np.round(RNG.uniform(-50, 50, (60, 4)), 2)
    pts[:, 3] = RNG.integers(0, 65535, 60)
    # Intensity first as uint16, doubles for xyz, shuffled order, padded points, 3 padded rows.
    layout = [("intensity", 0, "u2"), ("z", 4, "f8"), ("x", 12, "f8"), ("y", 24, "f8")]
    for bigendian in (False, True):
        msg = cloud_msg(pts[:, [3, 2, 0, 1]], layout, 40, height=3, row_pad=5, bigendian=bigendian)
        out = decode_pointcloud(msg)
        np.testing.assert_allclose(out, pts.astype(np.float32), rtol=1e-6)


def test_xyz_only_cloud_and_non_finite_points_dropped():
    pts = RNG.uniform(-5, 5, (10, 3)).astype(np.float32)
    pts[3, 0] = np.nan
    pts[7, 2] = np.inf
    out = decode_pointcloud(cloud_msg(pts, XYZI[:3], 12, is_dense=False))
    assert out.shape == (8, 3)
    np.testing.assert_array_equal(out, np.delete(pts, [3, 7], axis=0))


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda m: m.fields.pop(2), "missing_field"),
        (lambda m: setattr(m.fields[0], "offset", 14), "field_layout"),
        (lambda m: setattr(m.fields[1], "datatype", 42), "field_datatype"),
        (lambda m: setattr(m.fields[1], "count", 0), "field_layout"),
        (lambda m: setattr(m, "data", m.data[:-3]), "data_size"),
        (lambda m: setattr(m, "row_step", 10), "row_step"),
        (lambda m: setattr(m, "point_step", 0), "point_step"),
        (
            lambda m: (setattr(m, "width", 0), setattr(m, "data", b""), setattr(m, "row_step", 0)),
            "empty_cloud",
        ),
    ],
)
def test_malformed_clouds(mutate, reason):
    msg = cloud_msg(RNG.uniform(-5, 5, (8, 4)).astype(np.float32), XYZI, 16)
    mutate(msg)
    with pytest.raises(DecodeError) as e:
        decode_pointcloud(msg)
    assert e.value.reason == reason


def test_all_nan_cloud_is_empty():
    with pytest.raises(DecodeError) as e:
        decode_pointcloud(
            cloud_msg(np.full((4, 3), np.nan, np.float32), XYZI[:3], 12, is_dense=False)
        )
    assert e.value.reason == "empty_cloud"


def test_build_pointcloud_with_labels_round_trip():
    pts = RNG.uniform(-5, 5, (50, 4)).astype(np.float32)
    labels = RNG.integers(0, 25, 50).astype(np.uint8)
    kw = build_pointcloud(pts, labels)
    assert [f.name for f in kw["fields"]] == ["x", "y", "z", "intensity", "label"]
    assert kw["point_step"] == 20 and kw["row_step"] == 1000 and len(kw["data"]) == 1000
    msg = NS(**{**kw, "fields": [NS(**f._asdict()) for f in kw["fields"]]})
    np.testing.assert_array_equal(decode_pointcloud(msg), pts)
    rec = np.frombuffer(
        kw["data"],
        np.dtype({"names": ["label"], "formats": ["u1"], "offsets": [16], "itemsize": 20}),
    )
    np.testing.assert_array_equal(rec["label"], labels)


def test_labels_for_points():
    labels = np.arange(12, dtype=np.uint8).reshape(3, 4)
    # (0, 0), (3, 2), off the image (the padded border), (1, 2); the padded width is 6
    flat = np.array([1 * 6 + 1, 3 * 6 + 4, 5, 3 * 6 + 2])
    assert labels_for_points(flat, labels).tolist() == [0, 11, UNLABELLED, 9]


# ---------------------------------------------------------------- real message classes


def test_rclpy_image_round_trip_is_fast_even_with_field_checks():
    from sensor_msgs.msg import Image

    img = RNG.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    kw = build_image(img, "rgb8")
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        msg = Image(check_fields=True, **kw)
        times.append(time.perf_counter() - t0)
    np.testing.assert_array_equal(decode_image(msg), img)
    # Per-byte checking or a per-element copy of 921,600 bytes takes ~100 ms.
    assert min(times) < 0.02, f"building a 640x480 Image took {min(times) * 1e3:.1f} ms"


def test_rclpy_pointcloud_camera_info_and_rosbags_round_trip():
    from rclpy.serialization import serialize_message
    from rosbags.typesys import Stores, get_typestore
    from sensor_msgs.msg import CameraInfo, PointCloud2, PointField

    pts = RNG.uniform(-5, 5, (1000, 4)).astype(np.float32)
    labels = RNG.integers(0, 25, 1000).astype(np.uint8)
    kw = build_pointcloud(pts, labels)
    msg = PointCloud2(**{**kw, "fields": [PointField(**f._asdict()) for f in kw["fields"]]})
    np.testing.assert_array_equal(decode_pointcloud(msg), pts)

    info = CameraInfo(
        width=640,
        height=480,
        k=[500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0],
        d=[0.0] * 5,
        distortion_model="plumb_bob",
    )
    assert decode_camera_info(info).K[0, 2] == 320.0

    # The same functions read rosbags messages (data as numpy arrays).
    ts = get_typestore(Stores.ROS2_KILTED)
    bag_cloud = ts.deserialize_cdr(bytes(serialize_message(msg)), "sensor_msgs/msg/PointCloud2")
    np.testing.assert_array_equal(decode_pointcloud(bag_cloud), pts)
    depth = RNG.integers(0, 9000, (4, 6), dtype=np.uint16)
    from sensor_msgs.msg import Image

    bag_img = ts.deserialize_cdr(
        bytes(serialize_message(Image(**build_image(depth, "16UC1")))), "sensor_msgs/msg/Image"
    )
    np.testing.assert_array_equal(decode_image(bag_img), depth)
    assert isinstance(PointFieldSpec("x", 0, 7), tuple)


# ---------------------------------------------------------------- every common colour encoding

CV_CODES = {
    "rgba8": "COLOR_RGBA2RGB",
    "bgra8": "COLOR_BGRA2RGB",
    "yuv422": "COLOR_YUV2RGB_UYVY",
    "yuv422_yuy2": "COLOR_YUV2RGB_YUY2",
    "bayer_rggb8": "COLOR_BayerBG2RGB",  # OpenCV names the pattern from the second row/column
    "bayer_bggr8": "COLOR_BayerRG2RGB",
    "bayer_gbrg8": "COLOR_BayerGR2RGB",
    "bayer_grbg8": "COLOR_BayerGB2RGB",
}


def _test_image(shape, dtype=np.uint8) -> np.ndarray:
    """Smooth gradients plus noise: demosaicing and chroma are exercised everywhere."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = (xx * 7 + yy * 3) % 256
    img = base.reshape(h, w, *([1] * (len(shape) - 2))) + RNG.integers(0, 40, shape)
    return (img % 256).astype(dtype)


@pytest.mark.parametrize("encoding", sorted(CV_CODES))
def test_colour_encodings_match_opencv(encoding):
    import cv2

    from anyseg_ros.core.images import COLOR_LAYOUTS

    _, ch = COLOR_LAYOUTS[encoding]
    raw = _test_image((24, 32, ch) if ch > 1 else (24, 32))
    out = decode_image(image_msg(raw, encoding, pad=2), allowed=MODALITY_ENCODINGS["rgb"])
    ref = cv2.cvtColor(raw, getattr(cv2, CV_CODES[encoding]))
    assert out.shape == (24, 32, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, ref)  # bit-exact, border included


def test_mono16_is_scaled_to_8_bits_like_opencv():
    import cv2

    a = RNG.integers(0, 65536, (9, 11), dtype=np.uint16)
    a[0, :3] = [0, 65535, 32896]
    for big in (False, True):
        out = decode_image(image_msg(a, "mono16", bigendian=big), MODALITY_ENCODINGS["rgb"])
        np.testing.assert_array_equal(out, cv2.convertScaleAbs(a, alpha=255.0 / 65535.0))
    assert out[0, :3].tolist() == [0, 255, 128]


def test_colour_encodings_are_rgb_only():
    for enc in ("rgba8", "bayer_rggb8", "yuv422", "mono16"):
        assert enc in MODALITY_ENCODINGS["rgb"]
        assert enc not in MODALITY_ENCODINGS["depth"] + MODALITY_ENCODINGS["event"]


# ---------------------------------------------------------------- camera info: the whole spec


def _info(**kw):
    base = {
        "k": [400.0, 0, 320, 0, 400.0, 240, 0, 0, 1],
        "d": [],
        "p": [380.0, 0, 318, 0, 0, 380.0, 236, 0, 0, 0, 1, 0],
        "width": 640,
        "height": 480,
        "distortion_model": "plumb_bob",
        "binning_x": 0,
        "binning_y": 0,
        "roi": NS(x_offset=0, y_offset=0, width=0, height=0, do_rectify=False),
        "header": NS(frame_id="cam_optical"),
    }
    return NS(**{**base, **kw})


@pytest.mark.parametrize(
    "model, d",
    [
        ("plumb_bob", [0.1, -0.2, 0.001, 0.002, 0.05]),
        ("plumb_bob", [0.1, -0.2, 0.001, 0.002]),
        ("rational_polynomial", [0.1, -0.2, 0.001, 0.002, 0.05, 0.01, 0.02, 0.03]),
        ("equidistant", [0.1, -0.02, 0.003, -0.001]),
    ],
)
def test_distortion_models_pass_through_with_their_coefficients(model, d):
    cam = decode_camera_info(_info(distortion_model=model, d=d))
    assert cam.distortion_model == model and cam.frame_id == "cam_optical"
    np.testing.assert_array_equal(cam.D, d)


def test_rectified_input_uses_p_and_no_distortion():
    cam = decode_camera_info(_info(d=[0.1, 0, 0, 0, 0]), rectified=True)
    assert cam.D is None
    np.testing.assert_array_equal(cam.K, [[380, 0, 318], [0, 380, 236], [0, 0, 1]])


def test_roi_and_binning_are_applied_to_k_and_the_size():
    roi = NS(x_offset=100, y_offset=40, width=400, height=300, do_rectify=False)
    cam = decode_camera_info(_info(roi=roi, binning_x=2, binning_y=2))
    assert (cam.width, cam.height) == (200, 150)
    np.testing.assert_allclose(cam.K, [[200, 0, 110], [0, 200, 100], [0, 0, 1]])
    # A point seen at full-resolution pixel (u, v) lands at ((u - x0) / bx, (v - y0) / by).
    X = np.array([0.3, -0.1, 2.0])
    full = decode_camera_info(_info()).K @ (X / X[2])
    small = cam.K @ (X / X[2])
    np.testing.assert_allclose(small[:2], [(full[0] - 100) / 2, (full[1] - 40) / 2])
    cam = decode_camera_info(_info(binning_x=4, binning_y=1))
    assert (cam.width, cam.height) == (160, 480) and cam.K[0, 0] == 100 and cam.K[1, 1] == 400


@pytest.mark.parametrize(
    "kw, reason",
    [
        ({"k": [400.0, 0, 320, 0, 400.0, 240, 0, 0, 2]}, "camera_matrix"),
        ({"k": [400.0, 0, 320, 0, 400.0, 240, 0.1, 0, 1]}, "camera_matrix"),
        ({"k": [400.0, 0, 700, 0, 400.0, 240, 0, 0, 1]}, "principal_point"),
        ({"k": [400.0, 0, 320, 0, 400.0, -5, 0, 0, 1]}, "principal_point"),
        ({"k": [400.0, 0, float("nan"), 0, 400.0, 240, 0, 0, 1]}, "non_finite"),
        ({"d": [0.1, float("inf"), 0, 0, 0]}, "non_finite"),
        ({"d": [0.1, 0, 0]}, "distortion"),
        ({"distortion_model": "equidistant", "d": [0.1] * 8}, "distortion"),
        ({"roi": NS(x_offset=600, y_offset=0, width=100, height=10, do_rectify=False)}, "roi"),
        ({"roi": NS(x_offset=0, y_offset=0, width=0, height=10, do_rectify=False)}, "roi"),
        ({"binning_x": 1000}, "binning"),
        ({"width": 20000, "height": 20000}, "too_large"),
        ({"height": -1}, "camera_info"),
    ],
)
def test_camera_info_that_breaks_its_spec_is_refused_with_a_reason(kw, reason):
    with pytest.raises(DecodeError) as e:
        decode_camera_info(_info(**kw), max_pixels=8_294_400)
    assert e.value.reason == reason, e.value


def test_rectified_needs_a_valid_p():
    with pytest.raises(DecodeError) as e:
        decode_camera_info(_info(p=[0.0] * 12), rectified=True)
    assert e.value.reason == "camera_matrix"


def test_no_distortion_model_with_zero_coefficients_is_an_undistorted_camera():
    # Drivers that never set distortion_model publish "" with five zeros.
    cam = decode_camera_info(_info(distortion_model="", d=[0.0] * 5))
    assert cam.D is None and cam.distortion_model == "plumb_bob"
    with pytest.raises(DecodeError, match="distortion_model"):
        decode_camera_info(_info(distortion_model="", d=[0.1, 0, 0, 0, 0]))
