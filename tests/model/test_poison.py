"""Poisoned input reaches the shipped model only where it is: NaN/Inf pixels and points change
their own inputs, never the whole label image (issue 14's cases), and a checkpoint whose
representation parameters would make an input non-finite is refused when it is loaded."""

from pathlib import Path

import numpy as np
import pytest
import torch

from anyseg_model import CheckpointError, Segmentor

SHIPPED = Path(__file__).resolve().parents[2] / "checkpoints" / "anyseg_tiny_synthetic.pt"


@pytest.fixture(scope="module")
def segmentor() -> Segmentor:
    return Segmentor.from_checkpoint(SHIPPED, device="cpu")


@pytest.fixture(scope="module")
def frame():
    from anyseg_sim import SyntheticWorld, WorldConfig

    return SyntheticWorld(WorldConfig(width=320, height=240, seed=5)).frame(4)


def _agreement(seg: Segmentor, clean: dict, poisoned: dict) -> float:
    a, b = seg.predict(clean).labels, seg.predict(poisoned).labels
    return float((a == b).mean())


def test_one_nan_pixel_in_a_32fc1_event_frame(segmentor, frame):
    events = frame.event.astype(np.float32) - 128.0  # 32FC1: signed net counts
    bad = events.copy()
    bad[120, 160] = np.nan
    base = {"rgb": frame.rgb, "depth": frame.depth}
    assert _agreement(segmentor, {**base, "event": events}, {**base, "event": bad}) >= 0.99
    bad[50:52, 10:12] = np.inf
    assert _agreement(segmentor, {"event": events}, {"event": bad}) >= 0.99


def test_nan_intensities_in_a_cloud(segmentor, frame):
    scan = frame.lidar_scan()
    pts = np.resize(scan.points.astype(np.float32), (29_011, 4))  # the cloud size
    bad = pts.copy()
    bad[np.random.default_rng(0).choice(len(pts), 29, replace=False), 3] = np.nan
    bad[:5, 0] = np.inf  # and a few coordinates
    rebuilt = [
        type(scan)(p, scan.camera_matrix, scan.extrinsic, scan.image_size) for p in (pts, bad)
    ]
    assert _agreement(segmentor, {"lidar": rebuilt[0]}, {"lidar": rebuilt[1]}) >= 0.99
    both = [{"rgb": frame.rgb, "lidar": s} for s in rebuilt]
    assert _agreement(segmentor, *both) >= 0.99


def test_nonfinite_depth_is_no_measurement(segmentor, frame):
    bad = frame.depth.copy()
    bad[::17, ::13] = np.nan
    bad[5, :] = np.inf
    assert _agreement(segmentor, {"depth": frame.depth}, {"depth": bad}) >= 0.99


def _rewritten(tmp_path: Path, **representation_params) -> Path:
    data = torch.load(SHIPPED, map_location="cpu", weights_only=True)
    for m, params in representation_params.items():
        data["representations"][m]["params"] = params
    path = tmp_path / "edited.pt"
    torch.save(data, path)
    return path


@pytest.mark.parametrize(
    "params, message",
    [
        ({"depth": {"max_range_m": 0}}, "max_range_m = 0 must be a number in"),
        ({"event": {"saturation": float("inf")}}, "saturation = inf"),
        ({"lidar": {"max_intensity": 1, "gain": 2}}, "unknown parameter 'gain'"),
    ],
)
def test_checkpoint_with_bad_representation_parameters_is_refused(tmp_path, params, message):
    path = _rewritten(tmp_path, **params)
    with pytest.raises(CheckpointError, match=message) as e:
        Segmentor.from_checkpoint(path, device="cpu")
    assert str(path) in str(e.value) and "\n" not in str(e.value)
