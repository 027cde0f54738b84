"""Each representation on hand-made inputs with known answers."""

import numpy as np
import pytest

from anyseg_model.representations import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LidarScan,
    Representation,
    depth_metres,
    encode_depth,
    encode_event,
    encode_image,
    encode_lidar,
    encode_rgb,
    project_lidar,
)

K = np.array([[100.0, 0, 40], [0, 100.0, 30], [0, 0, 1]])
# LiDAR frame (x forward, y left, z up) -> camera optical frame (x right, y down, z forward),
# LiDAR mounted 0.5 m above the camera.
LIDAR_TO_CAM = np.array([[0, -1, 0, 0], [0, 0, -1, -0.5], [1, 0, 0, 0], [0, 0, 0, 1]], float)


def test_rgb_normalisation_and_bgr_order():
    img = np.zeros((2, 3, 3), np.uint8)
    img[..., 0] = 255  # pure red in rgb order
    x = encode_rgb(img)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, 0, 0], (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], rtol=1e-6)
    np.testing.assert_allclose(x[2, 0, 0], (0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2], rtol=1e-6)
    np.testing.assert_array_equal(encode_rgb(img[..., ::-1].copy(), order="bgr"), x)
    mono = encode_rgb(np.full((2, 3), 255, np.uint8))
    assert mono.shape == (3, 2, 3)


def test_depth_uint16_millimetres_and_float_metres_agree():
    mm = np.array([[0, 1000], [2500, 65000]], np.uint16)
    m = np.array([[np.nan, 1.0], [2.5, np.inf]], np.float32)
    np.testing.assert_allclose(depth_metres(mm), [[0, 1.0], [2.5, 65.0]])
    np.testing.assert_allclose(depth_metres(m), [[0, 1.0], [2.5, 0.0]])
    x = encode_depth(mm, max_range_m=80.0)
    np.testing.assert_allclose(x[0], [[0, 1 / 80], [2.5 / 80, 65 / 80]], rtol=1e-6)
    np.testing.assert_allclose(x[1], [[0, 1.0], [0.4, 1 / 65]], rtol=1e-6)
    assert encode_depth(mm, max_range_m=50.0)[0, 1, 1] == 1.0  # clipped at the range limit
    np.testing.assert_array_equal(x[2], [[0, 1], [1, 1]])
    assert encode_depth(np.array([[-1.0]], np.float32))[2, 0, 0] == 0  # negative = invalid


def test_event_layouts():
    offset = np.array([[128, 131, 126]], np.uint8)  # none, +3, -2
    x = encode_event(offset, saturation=4.0)
    np.testing.assert_allclose(x[0], [[0, 0.75, 0]])
    np.testing.assert_allclose(x[1], [[0, 0, 0.5]])
    np.testing.assert_array_equal(x[2], [[0, 1, 1]])
    signed = np.array([[0, 3, -2]], np.int16)
    np.testing.assert_array_equal(encode_event(signed, 4.0), x)
    two = np.array([[[0, 0], [3, 0], [0, 2]]], np.float32)
    np.testing.assert_array_equal(encode_event(two, 4.0), x)


def test_lidar_point_lands_on_the_right_pixel_with_the_right_depth():
    # 10 m ahead, 1 m left, at LiDAR height -> camera (x=-1, y=-0.5, z=10).
    pts = np.array([[10.0, 1.0, 0.0, 0.7]])
    p = project_lidar(LidarScan(pts, K, LIDAR_TO_CAM, (80, 60)))
    u, v = int(np.floor(100 * -1 / 10 + 40)), int(np.floor(100 * -0.5 / 10 + 30))
    assert (u, v) == (30, 25)
    assert p.depth[v, u] == pytest.approx(10.0)
    assert p.intensity[v, u] == pytest.approx(0.7)
    assert p.index[v, u] == 0 and (p.depth > 0).sum() == 1
    np.testing.assert_array_equal(p.pixel[0], [u, v])


def test_lidar_nearest_point_wins_and_off_image_points_drop():
    pts = np.array(
        [
            [20.0, 0.0, -0.5, 0.1],  # on the optical axis, like the next, but farther
            [10.0, 0.0, -0.5, 0.9],
            [-5.0, 0.0, -0.5, 0.5],  # behind the camera
            [10.0, 50.0, -0.5, 0.5],  # far outside the field of view
            [np.nan, 0, 0, 0],
        ]
    )
    for order in (pts, pts[[1, 0, 2, 3, 4]]):
        p = project_lidar(LidarScan(order, K, LIDAR_TO_CAM, (80, 60)))
        assert (p.depth > 0).sum() == 1
        assert p.depth[30, 40] == pytest.approx(10.0) and p.intensity[30, 40] == pytest.approx(0.9)
    assert (p.pixel[2:] == -1).all()


def test_lidar_distortion_moves_off_axis_points_only():
    d = np.array([0.5, 0, 0, 0, 0])
    centre = np.array([[10.0, 0.0, -0.5, 1]])  # on the optical axis
    off = np.array(
        [[10.0, -3.0, -0.5, 1]]
    )  # 3 m right: u 70 without, 71 with distortion  # 2 m right of the axis
    for pts, moves in ((centre, False), (off, True)):
        a = project_lidar(LidarScan(pts, K, LIDAR_TO_CAM, (80, 60))).pixel[0]
        b = project_lidar(LidarScan(pts, K, LIDAR_TO_CAM, (80, 60), distortion=d)).pixel[0]
        assert (a != b).any() == moves


def test_encode_lidar_channels():
    x = encode_lidar(
        LidarScan(np.array([[40.0, 0, -0.5, 0.5]]), K, LIDAR_TO_CAM, (80, 60)), max_range_m=80
    )
    assert x.shape == (3, 60, 80)
    assert (
        x[0, 30, 40] == pytest.approx(0.5)
        and x[1, 30, 40] == pytest.approx(0.5)
        and x[2].sum() == 1
    )
    xyz_only = encode_lidar(LidarScan(np.array([[40.0, 0, -0.5]]), K, LIDAR_TO_CAM, (80, 60)))
    assert xyz_only[1].sum() == 0 and xyz_only[2].sum() == 1


def test_image_passthrough():
    img = np.full((4, 5, 3), 51, np.uint8)
    np.testing.assert_allclose(encode_image(img), 0.2, rtol=1e-6)


@pytest.mark.parametrize(
    "fn, arg, message",
    [
        (encode_rgb, np.zeros((4, 4, 3), np.float32), "dtype float32 not accepted"),
        (encode_rgb, np.zeros((4, 4, 4), np.uint8), "shape"),
        (encode_depth, np.zeros((4, 4, 3), np.uint16), "shape"),
        (encode_depth, np.zeros((4, 4), np.uint8), "dtype uint8"),
        (encode_event, [[1, 2]], "numpy array"),
        (encode_lidar, np.zeros((4, 4)), "LidarScan"),
        (
            project_lidar,
            LidarScan(np.zeros((3, 2)), K, LIDAR_TO_CAM, (8, 8)),
            r"\(N, 3\) or \(N, 4\)",
        ),
    ],
)
def test_bad_inputs_are_value_errors(fn, arg, message):
    with pytest.raises(ValueError, match=message):
        fn(arg)


def test_representation_round_trip_and_unknown_name():
    r = Representation("depth_metric", {"max_range_m": 40.0})
    assert Representation.from_dict(r.to_dict()) == r
    assert r(np.array([[20000]], np.uint16))[0, 0, 0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="valid: .*lidar_projected"):
        Representation("hha")


def test_projection_is_computed_once_per_scan():
    scan = LidarScan(np.array([[10.0, 0.0, -0.5, 0.3]]), K, LIDAR_TO_CAM, (80, 60))
    first = scan.projection
    assert scan.projection is first  # the model input and the labelled points share it
    encode_lidar(scan)
    assert scan.projection is first
    np.testing.assert_array_equal(first.depth, project_lidar(scan).depth)


def test_resizing_keeps_sparse_inputs_sparse():
    """A pre-rendered LiDAR image (representation 'image') resizes like projected LiDAR: nearest,
    so a hit never smears into its empty neighbours; RGB and depth PNGs interpolate."""
    from anyseg_model.preprocess import to_batch

    img = np.zeros((8, 8, 3), np.uint8)
    img[::2, ::2] = 255
    reps = {m: Representation("image") for m in ("depth", "lidar")}
    out = to_batch({"depth": img, "lidar": img}, reps, size=(12, 12))
    assert set(np.unique(out["lidar"].numpy())) <= {0.0, 1.0}
    assert len(np.unique(out["depth"].numpy())) > 2
