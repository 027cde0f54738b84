"""The deliver writer produces exactly what a DELIVER loader expects, plus raw metric data."""

from __future__ import annotations

import glob
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from anyseg_sim import SyntheticWorld, WorldConfig
from anyseg_sim.deliver_writer import scene_name, scene_seed, split_of, write_deliver

W, H, SEED, FRAMES, SCENES = 64, 48, 5, 2, 5
CONDITIONS, FAILURES = ("sun", "night"), ("motionblur",)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("deliver_set")
    write_deliver(
        root,
        frames=FRAMES,
        width=W,
        height=H,
        seed=SEED,
        conditions=CONDITIONS,
        failures=FAILURES,
        scenes=SCENES,
    )
    return root


def deliver_files(root: Path, split: str) -> list[str]:
    """The file list of the official DELIVER loader (semseg/datasets/deliver.py)."""
    return sorted(glob.glob(os.path.join(str(root), "img", "*", split, "*", "*.png")))


def deliver_paths(rgb: str) -> dict[str, str]:
    """The official derivation of every modality path from the RGB path, plus the depth folder
    (the same rule into ``/depth``) and the raw arrays this generator adds (into ``/raw``)."""
    return {
        "depth": rgb.replace("/img", "/hha").replace("_rgb", "_depth"),
        "lidar": rgb.replace("/img", "/lidar").replace("_rgb", "_lidar"),
        "event": rgb.replace("/img", "/event").replace("_rgb", "_event"),
        "label": rgb.replace("/img", "/semantic").replace("_rgb", "_semantic"),
        "depth_png": rgb.replace("/img", "/depth").replace("_rgb", "_depth"),
        "raw": rgb.replace("/img", "/raw").replace("_rgb", "_raw").replace(".png", ".npz"),
    }


def deliver_label(path: str) -> np.ndarray:
    """The official label decoding: channel 0 (red), 255 -> 0, then minus one in uint8."""
    label = np.array(Image.open(path))[..., 0].copy()
    label[label == 255] = 0
    return label - np.uint8(1)


def test_layout_and_names_match_what_a_deliver_loader_derives(dataset):
    expected_scenes = {"train": [0, 1, 2], "val": [3], "test": [4]}
    for split, scenes in expected_scenes.items():
        files = deliver_files(dataset, split)
        names = {scene_name(SEED, k, f) for k in scenes for f in (None, *FAILURES)}
        assert len(files) == len(names) * len(CONDITIONS) * FRAMES, split
        assert {Path(f).parent.name for f in files} == names
        assert {Path(f).parts[-4] for f in files} == set(CONDITIONS)
        for rgb in files:
            assert Path(rgb).name.endswith("_rgb_front.png") and Path(rgb).name[:6].isdigit()
            for key, p in deliver_paths(rgb).items():
                assert os.path.isfile(p), (key, p)
            for key in ("depth", "lidar", "event", "depth_png"):
                img = np.array(Image.open(deliver_paths(rgb)[key]))
                assert img.shape == (H, W, 3) and img.dtype == np.uint8, key
    assert deliver_files(dataset, "train")[0].split(os.sep)[-5] == "img"
    # The case filter of the DELIVER loader ("motionblur" in path) finds exactly the failure scenes.
    every = sum((deliver_files(dataset, s) for s in expected_scenes), [])
    assert sum("motionblur" in f for f in every) == len(every) // 2
    for c in CONDITIONS:
        assert sum(f"/{c}/" in f for f in every) == len(every) // len(CONDITIONS)


def test_contents_round_trip_to_the_in_memory_frames(dataset):
    k, i = 3, 1  # a validation scene, second frame
    world = SyntheticWorld(WorldConfig(width=W, height=H, seed=scene_seed(SEED, k)))
    frame = world.frame(i, "night", "motionblur")
    rgb = str(
        dataset
        / "img"
        / "night"
        / split_of(k)
        / scene_name(SEED, k, "motionblur")
        / f"{i:06d}_rgb_front.png"
    )
    p = deliver_paths(rgb)
    np.testing.assert_array_equal(np.array(Image.open(rgb)), frame.rgb)
    np.testing.assert_array_equal(deliver_label(p["label"]), frame.labels)
    with np.load(p["raw"]) as z:
        assert set(z.files) == {
            "rgb",
            "labels",
            "depth",
            "event",
            "lidar",
            "lidar_labels",
            "lidar_K",
            "lidar_D",
            "lidar_extrinsic",
            "image_size_hw",
        }
        for key, value in (
            ("rgb", frame.rgb),
            ("labels", frame.labels),
            ("depth", frame.depth),
            ("event", frame.event),
            ("lidar", frame.lidar),
            ("lidar_labels", frame.lidar_labels),
            ("lidar_K", frame.camera_info.K),
            ("lidar_D", frame.camera_info.D),
            ("lidar_extrinsic", frame.lidar_extrinsic),
        ):
            assert z[key].dtype == value.dtype, key
            np.testing.assert_array_equal(z[key], value, err_msg=key)
        assert tuple(z["image_size_hw"]) == (H, W)
    np.testing.assert_array_equal(np.array(Image.open(p["depth"])), frame.hha())


def test_labels_decode_to_ids_with_ignore(tmp_path):
    from anyseg_sim.files import save_png, semantic_png

    ids = np.array([[0, 5, 24], [12, 255, 6]], np.uint8)
    save_png(tmp_path / "x_semantic_front.png", semantic_png(ids))
    np.testing.assert_array_equal(deliver_label(str(tmp_path / "x_semantic_front.png")), ids)


def test_calibration_and_manifest(dataset):
    cal = yaml.safe_load((dataset / "calibration.yaml").read_text())
    T = np.array(cal["lidar_extrinsic"]).reshape(4, 4)
    np.testing.assert_allclose(T, SyntheticWorld(WorldConfig(width=W, height=H)).rig.T_cam_lidar)
    assert cal["camera_info"]["width"] == W and len(cal["camera_info"]["K"]) == 9


def test_output_is_byte_identical_for_the_same_seed(dataset, tmp_path):
    again = tmp_path / "again"
    write_deliver(
        again, frames=1, width=W, height=H, seed=SEED, conditions=("sun",), failures=(), scenes=1
    )

    def digest(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
            and "/sun/" in str(p)
            and "000000" in p.name
            and scene_name(SEED, 0) == p.parent.name
        }

    a, b = digest(dataset), digest(again)
    assert len(a) == 7 and a == b
