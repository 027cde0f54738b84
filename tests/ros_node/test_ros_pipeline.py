"""anyseg_ros.pipeline (node logic without rclpy) with stand-in messages and a tiny checkpoint."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from anyseg_ros.core.decode import DecodeError, build_image, build_pointcloud
from anyseg_ros.core.settings import Settings
from anyseg_ros.core.sync import FrameSet
from anyseg_ros.pipeline import Pipeline, Sample, StartupError, check_segmentor
from anyseg_sim.rig import lidar_extrinsic

LIDAR_TO_CAMERA = lidar_extrinsic()

W, H = 32, 24


def settings(**kw) -> Settings:
    return Settings.from_parameters(
        {"checkpoint": "m.pt", "lidar_extrinsic": LIDAR_TO_CAMERA, **kw}
    )


def header(ns: int, frame: str):
    return NS(stamp=NS(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame)


def camera_info(w=W, h=H):
    f = w / 2
    return NS(
        k=[f, 0, w / 2, 0, f, h / 2, 0, 0, 1],
        d=[0.0] * 5,
        width=w,
        height=h,
        distortion_model="plumb_bob",
    )


def cloud(n=500):
    rng = np.random.default_rng(0)
    pts = np.stack(
        [rng.uniform(3, 20, n), rng.uniform(-3, 3, n), rng.uniform(-1, 1, n), rng.uniform(0, 1, n)],
        1,
    )
    kw = build_pointcloud(pts.astype(np.float32))
    return NS(header=header(5, "lidar"), fields=[NS(**f._asdict()) for f in kw.pop("fields")], **kw)


def fake_segmentor(modalities=("rgb", "depth", "event", "lidar"), reps=None, classes=25):
    from anyseg_model.representations import DEFAULT_REPRESENTATIONS, Representation

    reps = reps or {m: Representation(DEFAULT_REPRESENTATIONS[m]) for m in modalities}
    return NS(
        modalities=modalities,
        representations=reps,
        classes=tuple(range(classes)),
        palette=[(1, 2, 3)] * classes,
    )


def test_checkpoint_must_fit_the_configured_inputs():
    from anyseg_model.representations import Representation

    assert len(check_segmentor(settings(), fake_segmentor())) == 25
    with pytest.raises(
        StartupError, match=r"supports modalities \['rgb'\].*\['depth', 'event', 'lidar'\]"
    ):
        check_segmentor(settings(), fake_segmentor(("rgb",)))
    hha = {"rgb": Representation("rgb"), "depth": Representation("image")}
    with pytest.raises(StartupError, match="encodes depth as 'image'"):
        check_segmentor(
            settings(modalities=["rgb", "depth"]), fake_segmentor(("rgb", "depth"), hha)
        )
    with pytest.raises(StartupError, match="'palette' has 1 colours"):
        check_segmentor(settings(palette=[0, 0, 0]), fake_segmentor())


def test_decode_and_arrays_with_lidar_projected_at_the_image_size():
    pipe = Pipeline(settings().inputs, [(i, i, i) for i in range(25)])
    rgb = NS(header=header(5, "cam"), **build_image(np.zeros((H * 2, W * 2, 3), np.uint8), "rgb8"))
    stamp, sample = pipe.decode("rgb", rgb)
    assert stamp == 5 and sample.data.shape == (H * 2, W * 2, 3)
    _, lidar = pipe.decode("lidar", cloud())
    fs = FrameSet(5, "rgb", {"rgb": (5, sample), "lidar": (5, lidar)})

    assert list(pipe.arrays(fs)) == ["rgb"]  # no camera model yet: LiDAR left out, counted
    assert pipe.error_counts() == {"lidar/no_camera_info": 1}

    pipe.set_camera_info(camera_info())  # calibrated at W x H, image is 2W x 2H: K scales
    scan = pipe.arrays(fs)["lidar"]
    assert (
        scan.image_size == (W * 2, H * 2)
        and scan.camera_matrix[0, 0] == W
        and scan.camera_matrix[0, 2] == W
    )
    np.testing.assert_array_equal(scan.extrinsic, np.reshape(LIDAR_TO_CAMERA, (4, 4)))

    with pytest.raises(DecodeError) as e:
        pipe.decode(
            "depth", NS(header=header(1, "d"), **build_image(np.zeros((H, W, 3), np.uint8), "rgb8"))
        )
    assert e.value.reason == "encoding"


def test_outputs_labels_colour_points_and_info():
    pipe = Pipeline(settings(calibration_file="").inputs, [(10 * i, 0, 0) for i in range(25)])
    pipe.set_camera_info(camera_info())
    _, lidar = pipe.decode("lidar", cloud())
    depth = Sample(header(7, "d"), np.full((H, W), 5000, np.uint16))
    fs = FrameSet(7, "depth", {"depth": (7, depth), "lidar": (6, lidar)})
    arrays = pipe.arrays(fs)
    labels = np.full((H, W), 3, np.uint8)
    out = pipe.outputs(fs, arrays, labels, want_color=True)
    assert out.labels["encoding"] == "mono8" and (out.labels["width"], out.labels["height"]) == (
        W,
        H,
    )
    assert out.color["encoding"] == "rgb8" and bytes(out.color["data"][:3]) == bytes([30, 0, 0])
    assert [f.name for f in out.points["fields"]][-1] == "label" and out.points["width"] == len(
        lidar.data
    )
    labels_of_points = np.frombuffer(out.points["data"], np.uint8).reshape(
        -1, out.points["point_step"]
    )[:, 16]
    assert set(np.unique(labels_of_points)) <= {3, 255} and (labels_of_points == 3).any()
    assert out.info == {
        "stamp_ns": 7,
        "anchor": "depth",
        "modalities": ["depth", "lidar"],
        "size": [W, H],
        "frame_id": "d",  # no RGB seen, camera_info without a frame: the anchor's frame
        "age_ms": {"depth": 0.0, "lidar": 0.0},
        "reused": [],
    }
    assert pipe.outputs(fs, {"depth": depth.data}, labels, want_color=False).points is None


def test_one_output_camera_whichever_sensor_anchors():
    """Labels, colour and camera_info stay on the RGB camera's grid and frame_id when depth
    anchors (here at half the size): consumers that cache camera_info per topic keep working."""
    pipe = Pipeline(settings().inputs, [(10 * i, 0, 0) for i in range(25)])
    info = camera_info(2 * W, 2 * H)  # calibrated at twice the streamed size
    info.header = header(1, "camera_rgb_optical")
    pipe.set_camera_info(info)
    rgb = Sample(header(10, "camera_rgb"), np.zeros((H, W, 3), np.uint8))
    fs = FrameSet(10, "rgb", {"rgb": (10, rgb)})
    out = pipe.outputs(fs, pipe.arrays(fs), np.ones((H, W), np.uint8), want_color=True)
    cam = out.camera
    assert (cam.frame_id, cam.width, cam.height, cam.source) == ("camera_rgb", W, H, "rgb")
    np.testing.assert_allclose(cam.K, [[W / 2, 0, W / 2], [0, W / 2, H / 2], [0, 0, 1]])

    # RGB stale: depth anchors at half the size; its labels go out on the RGB grid and frame.
    labels = np.zeros((H // 2, W // 2), np.uint8)
    labels[:, W // 4 :] = 7  # right half
    depth = Sample(header(60, "camera_depth"), np.full((H // 2, W // 2), 5000, np.uint16))
    fs = FrameSet(60, "depth", {"depth": (60, depth)}, reused=frozenset())
    out = pipe.outputs(fs, pipe.arrays(fs), labels, want_color=True)
    assert (out.camera.frame_id, out.camera.width, out.camera.height) == ("camera_rgb", W, H)
    np.testing.assert_array_equal(out.camera.K, cam.K)
    assert out.info["frame_id"] == "camera_rgb"
    assert (out.labels["width"], out.labels["height"]) == (W, H)
    assert (out.color["width"], out.color["height"]) == (W, H)
    up = np.frombuffer(bytes(out.labels["data"]), np.uint8).reshape(H, W)
    assert (up[:, : W // 2] == 0).all() and (up[:, W // 2 :] == 7).all()


def test_output_camera_before_any_rgb_image():
    depth = Sample(header(5, "camera_depth"), np.full((H, W), 5000, np.uint16))
    fs = FrameSet(5, "depth", {"depth": (5, depth)})
    labels = np.zeros((H, W), np.uint8)
    bare = Pipeline(settings(modalities=["rgb", "depth"]).inputs, [(0, 0, 0)])
    cam = bare.outputs(fs, bare.arrays(fs), labels, False).camera
    assert (cam.frame_id, cam.width, cam.height, cam.K, cam.source) == (
        "camera_depth",
        W,
        H,
        None,
        "anchor",
    )
    pipe = Pipeline(settings().inputs, [(0, 0, 0)])
    info = camera_info(2 * W, 2 * H)
    info.header = header(1, "camera_rgb_optical")
    pipe.set_camera_info(info)
    out = pipe.outputs(fs, pipe.arrays(fs), labels, False)
    assert (out.camera.frame_id, out.camera.width, out.camera.source) == (
        "camera_rgb_optical",
        2 * W,
        "camera_info",
    )
    assert (out.labels["width"], out.labels["height"]) == (2 * W, 2 * H)


def test_frame_info_reports_the_age_of_a_reused_message():
    pipe = Pipeline(settings(modalities=["rgb", "depth"]).inputs, [(0, 0, 0)])
    t, t_depth = 150_000_000, 100_000_000
    rgb = Sample(header(t, "c"), np.zeros((H, W, 3), np.uint8))
    depth = Sample(header(t_depth, "d"), np.full((H, W), 5000, np.uint16))
    fs = FrameSet(t, "rgb", {"rgb": (t, rgb), "depth": (t_depth, depth)}, frozenset({"depth"}))
    info = pipe.outputs(fs, pipe.arrays(fs), np.zeros((H, W), np.uint8), False).info
    assert info["age_ms"] == {"rgb": 0.0, "depth": 50.0} and info["reused"] == ["depth"]


def test_a_real_tiny_checkpoint_runs_through_the_pipeline(tiny_checkpoint):
    from anyseg_model import Segmentor

    w, h = 64, 48
    seg = Segmentor.from_checkpoint(tiny_checkpoint, device="cpu")
    pipe = Pipeline(settings().inputs, check_segmentor(settings(), seg))
    pipe.set_camera_info(camera_info(w, h))
    items = {
        "rgb": (1, Sample(header(1, "c"), np.zeros((h, w, 3), np.uint8))),
        "event": (1, Sample(header(1, "e"), np.full((h, w), 128, np.uint8))),
        "lidar": (1, pipe.decode("lidar", cloud())[1]),
    }
    fs = FrameSet(1, "rgb", items)
    arrays = pipe.arrays(fs)
    pred = seg.predict(arrays)
    assert pred.labels.shape == (h, w) and pred.modalities == ("rgb", "event", "lidar")
    out = pipe.outputs(fs, arrays, pred.labels, want_color=False)
    assert out.info["modalities"] == ["rgb", "event", "lidar"] and out.points["width"] == 500


def test_a_reused_sweep_is_projected_once_and_its_points_not_published_again():
    pipe = Pipeline(settings(modalities=["rgb", "lidar"]).inputs, [(0, 0, 0)] * 25)
    pipe.set_camera_info(camera_info())
    _, sweep = pipe.decode("lidar", cloud())
    labels = np.zeros((H, W), np.uint8)
    first = FrameSet(
        10,
        "rgb",
        {"rgb": (10, Sample(header(10, "c"), np.zeros((H, W, 3), np.uint8))), "lidar": (5, sweep)},
    )
    a = pipe.arrays(first)
    assert pipe.outputs(first, a, labels, False).points is not None
    pipe.set_camera_info(camera_info())  # the same camera again (per-frame camera_info)
    later = FrameSet(
        60,
        "rgb",
        {"rgb": (60, Sample(header(60, "c"), np.zeros((H, W, 3), np.uint8))), "lidar": (5, sweep)},
        frozenset({"lidar"}),
    )
    b = pipe.arrays(later)
    assert b["lidar"] is a["lidar"]  # its projection (cached on the scan) is not computed again
    assert pipe.outputs(later, b, labels, False).points is None
    other = camera_info()
    other.k = [W, 0, W / 2, 0, W, H / 2, 0, 0, 1]  # another calibration: a new scan
    pipe.set_camera_info(other)
    assert pipe.arrays(later)["lidar"] is not a["lidar"]


def test_models_of_more_than_255_classes_publish_mono16_labels_that_never_wrap(tmp_path):
    """Issue 14 item 2: uint8 labels wrapped above 255 (17,060 of 19,200 pixels changed)."""
    import torch

    from anyseg_model import Segmentor, create_model, save_checkpoint
    from anyseg_model.inference import label_dtype
    from anyseg_ros.core.decode import colorize, decode_labels, labels_for_points

    assert label_dtype(255) == np.uint8 and label_dtype(256) == np.uint16
    with pytest.raises(ValueError, match="1..65535"):
        label_dtype(70_000)
    model = create_model("anyseg_tiny", num_classes=300, modalities=("rgb",))
    with torch.no_grad():  # make class 299 win everywhere: a wrapping uint8 would give 43
        model.decode_head.classifier.bias.fill_(-10.0)
        model.decode_head.classifier.bias[299] = 10.0
    ckpt = save_checkpoint(model, tmp_path / "wide.pt")
    seg = Segmentor.from_checkpoint(ckpt, "cpu")
    pred = seg.predict({"rgb": np.zeros((64, 64, 3), np.uint8)})
    assert pred.labels.dtype == np.uint16 and (pred.labels == 299).all()

    s = Settings.from_parameters({"checkpoint": str(ckpt), "modalities": ["rgb"]})
    pipe = Pipeline(s.inputs, [(i % 256, 0, 0) for i in range(300)])
    img = np.zeros((64, 64, 3), np.uint8)
    fs = FrameSet(0, "rgb", {"rgb": (0, Sample(header(0, "cam"), img))})
    out = pipe.outputs(fs, pipe.arrays(fs), pred.labels, want_color=True)
    assert out.labels["encoding"] == "mono16"
    labels = decode_labels(NS(header=header(0, "cam"), **out.labels))
    assert labels.dtype == np.uint16 and (labels == 299).all()
    assert (colorize(pred.labels, pipe.palette) == (299 % 256, 0, 0)).all()
    # LiDAR points off the image: 65535 ("no label"), not a class id.
    w = pred.labels.shape[1]
    on_off = labels_for_points(np.array([2 * (w + 2) + 2, 0]), pred.labels)  # (1, 1), off
    assert on_off.dtype == np.uint16 and on_off.tolist() == [299, 65535]
