"""Each representation on hand-made inputs with known answers; the torch implementation (what
training and the node run) against the numpy reference; camera models against OpenCV."""

import cv2
import numpy as np
import pytest
import torch

from anyseg_model import lidar_kernel
from anyseg_model.encoding import encode_tensor
from anyseg_model.representations import (
    DEFAULT_REPRESENTATIONS,
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
    image_points,
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


# ---------------------------------------------------------------- torch == numpy reference

RNG = np.random.default_rng(7)
H, W = 36, 52
K_CAM = np.array([[40.0, 0, 26], [0, 41.0, 18], [0, 0, 1]])
DISTORTIONS = [
    (None, "plumb_bob"),
    ([-0.25, 0.08, 0.001, -0.002, -0.01], "plumb_bob"),
    ([0.4, -0.2, 0.001, 0.002, 0.05, 0.7, -0.1, 0.03], "rational_polynomial"),
    ([0.05, -0.01, 0.002, -0.0005], "equidistant"),
]


def _cloud(n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(n)
    pts = np.stack(
        [
            rng.uniform(-5, 40, n),
            rng.uniform(-30, 30, n),
            rng.uniform(-3, 3, n),
            rng.uniform(0, 2, n),
        ],
        1,
    ).astype(np.float32)
    pts[1::9] = pts[::9][: len(pts[1::9])]  # exact duplicates: equal-depth ties
    pts[2::9, :3] = pts[::9, :3][: len(pts[2::9])]  # same point, other intensity
    return pts


def _images() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    depth_m = rng.uniform(0, 90, (H, W)).astype(np.float32)
    depth_m[rng.random((H, W)) < 0.2] = np.nan
    depth_m[0, :3] = [np.inf, -np.inf, -2.0]
    events = rng.normal(0, 3, (H, W, 2)).astype(np.float32)
    events[1, 1, 0] = np.nan
    return [
        ("rgb", rng.integers(0, 256, (H, W, 3), dtype=np.uint8)),
        ("rgb", rng.integers(0, 256, (H, W), dtype=np.uint8)),
        ("depth", rng.integers(0, 65536, (H, W), dtype=np.uint16)),
        ("depth", depth_m),
        ("depth", depth_m.astype(np.float64)),
        ("event", rng.integers(100, 156, (H, W), dtype=np.uint8)),
        *[("event", rng.integers(-9, 9, (H, W)).astype(t)) for t in (np.int8, np.int16, np.int32)],
        ("event", np.where(rng.random((H, W)) < 0.1, np.nan, rng.normal(0, 4, (H, W)))),
        ("event", events),
    ]


@pytest.mark.parametrize("k", range(len(_images())))
def test_torch_encoders_equal_the_numpy_reference(k):
    modality, raw = _images()[k]
    for params in ({}, {"max_range_m": 30.0} if modality == "depth" else {}):
        rep = Representation(DEFAULT_REPRESENTATIONS[modality], params)
        got, want = rep(raw), rep.reference(raw)
        assert got.dtype == np.float32 and got.shape == want.shape == (3, H, W)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert np.isfinite(got).all()
    bgr = Representation("rgb", {"order": "bgr"})
    np.testing.assert_allclose(bgr(_images()[0][1]), bgr.reference(_images()[0][1]), atol=1e-6)


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("distortion, model", DISTORTIONS)
def test_torch_lidar_projection_equals_the_numpy_reference(
    monkeypatch, distortion, model, compiled
):
    """On the CPU the compiled loop (anyseg_model.lidar_kernel), or torch as on a GPU."""
    if not compiled:
        monkeypatch.setattr(lidar_kernel, "available", lambda: False)
    pts = _cloud()
    pts[::50, 3] = np.nan
    pts[5::77, 0] = np.nan
    pts[6::77, 2] = np.inf
    rep = Representation("lidar_projected", {"max_range_m": 30.0, "max_intensity": 1.5})
    device_scan = LidarScan(pts, K_CAM, LIDAR_TO_CAM, (W, H), distortion, model)
    reference_scan = LidarScan(pts, K_CAM, LIDAR_TO_CAM, (W, H), distortion, model)
    got = rep(device_scan)  # keeps its projection on the scan
    np.testing.assert_allclose(got, rep.reference(reference_scan), rtol=0, atol=1e-6)
    assert np.isfinite(got).all() and got[2].sum() > 300
    ours, ref = device_scan.projection, project_lidar(reference_scan)
    assert type(ours).__name__ == "DeviceProjection"
    for field in ("depth", "intensity", "index", "pixel"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(ref, field), err_msg=field)
    # flat: the padded image's index; on its border (not always the same cell) when off-image.
    on = ref.pixel[:, 0] >= 0
    assert on.sum() > 300 and (~on).sum() > 10
    padded = (ref.pixel[:, 1] + 1) * (W + 2) + ref.pixel[:, 0] + 1
    border = np.ones((H + 2, W + 2), bool)
    border[1:-1, 1:-1] = False
    # Also encoded straight into a smaller grid (no z-buffer at the camera's size).
    small = LidarScan(pts, K_CAM, LIDAR_TO_CAM, (W, H), distortion, model)
    encode_tensor(rep, small, "cpu", (H // 2, W // 3))
    for flat in (ref.flat, ours.flat, small.projection.flat):
        np.testing.assert_array_equal(flat[on], padded[on])
        assert border.reshape(-1)[flat[~on]].all()


def test_equal_depths_go_to_the_highest_intensity_then_the_highest_index():
    same = [10.0, 0.0, -0.5]
    pts = np.array([[*same, 0.2], [*same, 0.9], [*same, 0.9], [*same, 0.1]], np.float32)
    for proj in (
        project_lidar(LidarScan(pts, K, LIDAR_TO_CAM, (80, 60))),
        _projected(LidarScan(pts, K, LIDAR_TO_CAM, (80, 60))),
    ):
        assert proj.index[30, 40] == 2 and proj.intensity[30, 40] == pytest.approx(0.9)


def _projected(scan: LidarScan):
    Representation("lidar_projected").encode(scan)
    return scan.projection


def test_to_batch_resamples_like_encode_then_resize():
    """The node picks source pixels (nearest) and resamples RGB before normalising: the same
    values as training's encode() then resize()."""
    from anyseg_model.preprocess import encode, is_dense, resize, to_batch

    arrays = {
        "rgb": _images()[0][1],
        "depth": _images()[2][1],
        "event": _images()[5][1],
        "lidar": LidarScan(_cloud(), K_CAM, LIDAR_TO_CAM, (W, H)),
    }
    reps = {m: Representation(DEFAULT_REPRESENTATIONS[m]) for m in arrays}
    full = encode(arrays, reps)
    # (12, 26), (12, 4): odd integer factors (3, 13), where bilinear samples the source exactly
    for size in ((18, 26), (50, 70), (H, W), (23, 41), (12, 26), (12, 4)):
        batch = to_batch(arrays, reps, size)
        for m, x in batch.items():
            want = resize(torch.from_numpy(full[m]), size, is_dense(m, reps[m]))
            assert x.shape == (1, 3, *size)
            # RGB is resampled from its uint8 taps, then normalised: float rounding only. That
            # is within 3e-5 grey levels of exact bilinear; F.interpolate's own kernel is up to
            # 5e-4 off it at non-integer ratios, hence 2e-5 after normalisation (/255/std).
            tol = 2e-5 if m == "rgb" else 0.0
            torch.testing.assert_close(x[0], want, rtol=0, atol=tol, msg=f"{m} {size}")


# ---------------------------------------------------------------- camera models


@pytest.mark.parametrize("distortion, model", DISTORTIONS[1:])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_projection_agrees_with_opencv(distortion, model, dtype):
    K_big = np.array([[400.0, 0, 320], [0, 410.0, 240], [0, 0, 1]])
    T = np.array([[0, -1, 0, 0.1], [0, 0, -1, -0.5], [1, 0, 0, 0.2], [0, 0, 0, 1]], float)
    pts = np.stack([RNG.uniform(3, 40, 3000), RNG.uniform(-15, 15, 3000), RNG.uniform(-3, 3, 3000)])
    pts = pts.T
    scan = LidarScan(pts, K_big, T, (640, 480), np.array(distortion), model)
    u, v, z, unfolded = image_points(pts.astype(dtype), scan, np)
    rvec, _ = cv2.Rodrigues(T[:3, :3])
    if model == "equidistant":
        ref, _ = cv2.fisheye.projectPoints(
            pts.reshape(-1, 1, 3), rvec, T[:3, 3], K_big, np.array(distortion)
        )
    else:
        ref, _ = cv2.projectPoints(pts, rvec, T[:3, 3], K_big, np.array(distortion))
    ref = ref.reshape(-1, 2)
    inside = unfolded & (z > 0.1) & (ref[:, 0] >= 0) & (ref[:, 0] < 640) & (ref[:, 1] >= 0)
    inside &= ref[:, 1] < 480
    assert inside.sum() > 1000
    err = np.abs(np.stack([u, v], 1)[inside] - ref[inside]).max()
    assert err < 0.01, err


def test_points_past_the_fold_of_the_distortion_are_not_projected():
    """Strong barrel distortion folds back: OpenCV maps a point 54 degrees off the axis next
    to the image centre; the projection leaves it out."""
    d = np.array([-0.5, 0.0, 0.0, 0.0, 0.0])  # r (1 - 0.5 r^2) stops growing at r = 0.816
    r = np.array([0.1, 0.3, 1.40])  # tan of the angle off the optical axis
    pts = np.stack([np.full(3, 10.0), -10.0 * r, np.full(3, -0.5)], 1)  # LiDAR frame
    scan = LidarScan(pts, K, LIDAR_TO_CAM, (80, 60), d)
    _, _, _, unfolded = image_points(pts, scan, np)
    np.testing.assert_array_equal(unfolded, [True, True, False])
    rvec, _ = cv2.Rodrigues(LIDAR_TO_CAM[:3, :3])
    ref, _ = cv2.projectPoints(pts, rvec, LIDAR_TO_CAM[:3, 3], K, d)
    assert 0 <= ref[2, 0, 0] < 80 and 0 <= ref[2, 0, 1] < 60  # OpenCV: inside the image
    pixel = project_lidar(scan).pixel
    assert (pixel[:2] >= 0).all() and (pixel[2] == -1).all()
    np.testing.assert_array_equal(
        _projected(LidarScan(pts, K, LIDAR_TO_CAM, (80, 60), d)).pixel, pixel
    )


@pytest.mark.parametrize(
    "d, model, message",
    [
        ([0.1, 0, 0, 0, 0, 0.3], "plumb_bob", "at most 5"),
        ([0.1] * 9, "rational_polynomial", "at most 8"),
        ([0.1] * 5, "equidistant", "at most 4"),
        ([0.1, np.nan, 0, 0], "plumb_bob", "non-finite"),
        ([0.1], "kannala_brandt", "not supported; valid"),
    ],
)
def test_bad_distortion_is_refused_naming_it(d, model, message):
    with pytest.raises(ValueError, match=message):
        LidarScan(np.zeros((1, 3)), K, LIDAR_TO_CAM, (8, 8), np.array(d), model)


def test_zero_or_missing_distortion_is_a_rectified_camera():
    pts = _cloud(500)
    plain = project_lidar(LidarScan(pts, K_CAM, LIDAR_TO_CAM, (W, H)))
    for d, model in ((np.zeros(8), "rational_polynomial"), (np.zeros(4), "equidistant")):
        scan = LidarScan(pts, K_CAM, LIDAR_TO_CAM, (W, H), d, model)
        assert scan.coefficients is None
        np.testing.assert_array_equal(project_lidar(scan).pixel, plain.pixel)


# ---------------------------------------------------------------- poison and parameters


def test_a_poisoned_pixel_changes_only_that_pixel():
    depth = RNG.uniform(1, 50, (H, W)).astype(np.float32)
    events = RNG.integers(-3, 4, (H, W)).astype(np.float32)
    for modality, raw in (("depth", depth), ("event", events)):
        rep = Representation(DEFAULT_REPRESENTATIONS[modality])
        clean = rep(raw)
        for poison in (np.nan, np.inf, -np.inf):
            bad = raw.copy()
            bad[3, 4] = poison
            x = rep(bad)
            assert np.isfinite(x).all(), (modality, poison)
            changed = np.argwhere((x != clean).any(0))
            assert changed.tolist() in ([], [[3, 4]]), (modality, poison)


def test_poisoned_lidar_points_change_only_their_pixels():
    pts = _cloud()
    rep = Representation("lidar_projected")
    clean = rep(LidarScan(pts, K_CAM, LIDAR_TO_CAM, (W, H)))
    bad = pts.copy()
    bad[10:39, 3] = np.nan  # 29 NaN intensities
    bad[40, 0] = np.nan
    bad[41, 2] = np.inf
    x = rep(LidarScan(bad, K_CAM, LIDAR_TO_CAM, (W, H)))
    assert np.isfinite(x).all()
    assert (x != clean).any(0).sum() <= 31


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("depth_metric", {"max_range_m": 0}, "max_range_m = 0 must be a number in"),
        ("depth_metric", {"max_range_m": float("nan")}, "max_range_m = nan"),
        ("depth_metric", {"max_range": 80}, r"unknown parameter 'max_range'; valid: \['max_"),
        ("event_frame", {"saturation": -1}, "saturation = -1"),
        ("lidar_projected", {"max_intensity": "1"}, "max_intensity = '1'"),
        ("rgb", {"std": [0.2, 0.0, 0.2]}, "std = .* must be 3 numbers"),
        ("rgb", {"order": "rbg"}, "'rgb' or 'bgr'"),
        ("image", {"scale": 2}, "unknown parameter 'scale'; valid: \\[\\]"),
    ],
)
def test_bad_representation_parameters_are_one_clear_error(name, params, message):
    with pytest.raises(ValueError, match=message):
        Representation(name, params)


@pytest.mark.parametrize("d", [3, ["depth_metric"], {"params": {}}, {"name": "rgb", "params": 1}])
def test_malformed_representation_entries_are_refused(d):
    with pytest.raises(ValueError, match="representation"):
        Representation.from_dict(d)


def test_projection_size_limit_keeps_the_padded_indices_exact_in_float32():
    from anyseg_model.representations import _check_scan

    pts = np.zeros((1, 4), np.float32)
    assert _check_scan(LidarScan(pts, K, LIDAR_TO_CAM, (4093, 4093)))[1:] == (4093, 4093)
    with pytest.raises(ValueError, match="too large"):
        _check_scan(LidarScan(pts, K, LIDAR_TO_CAM, (4094, 4094)))
