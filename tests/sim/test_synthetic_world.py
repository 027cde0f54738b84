"""The synthetic world: formats, determinism, motion, class content, complementary sensors."""

from __future__ import annotations

import numpy as np
import pytest

from anyseg_model.classes import DELIVER_CLASSES, class_id
from anyseg_model.representations import encode_depth, encode_event, encode_lidar, encode_rgb
from anyseg_sim import SCENE_CLASSES, SyntheticWorld, WorldConfig
from anyseg_sim.shading import GROUND_REFLECTIVITY

ROAD, ROADLINE, SKY = class_id("Road"), class_id("RoadLine"), class_id("Sky")


def _arrays(f):
    return {
        "rgb": f.rgb,
        "depth": f.depth,
        "event": f.event,
        "labels": f.labels,
        "lidar": f.lidar,
        "lidar_labels": f.lidar_labels,
    }


def test_frame_formats_match_the_node_wire_formats(frames):
    f = frames[0]
    h, w = 120, 160
    assert f.rgb.shape == (h, w, 3) and f.rgb.dtype == np.uint8
    assert f.depth.shape == (h, w) and f.depth.dtype == np.float32
    assert f.event.shape == (h, w) and f.event.dtype == np.uint8
    assert f.labels.shape == (h, w) and f.labels.dtype == np.uint8
    assert f.lidar.ndim == 2 and f.lidar.shape[1] == 4 and f.lidar.dtype == np.float32
    assert f.lidar_labels.shape == (len(f.lidar),) and f.lidar_labels.dtype == np.uint8
    assert np.all(f.depth >= 0) and np.isfinite(f.depth).all()
    assert (
        f.camera_info.K.shape == (3, 3)
        and f.camera_info.P.shape == (3, 4)
        and f.camera_info.D.shape == (5,)
    )
    R = f.lidar_extrinsic[:3, :3]
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(f.lidar_extrinsic[3], [0, 0, 0, 1])
    # Every representation the node uses accepts the arrays as they are.
    for x in (
        encode_rgb(f.rgb),
        encode_depth(f.depth),
        encode_depth(f.depth_mm()),
        encode_event(f.event),
        encode_lidar(f.lidar_scan()),
    ):
        assert x.shape == (3, h, w) and np.isfinite(x).all()


def test_same_seed_gives_identical_bytes_and_order_does_not_matter():
    cfg = WorldConfig(width=96, height=64, seed=11)
    a, b = SyntheticWorld(cfg), SyntheticWorld(cfg)
    b.frame(4, "rain", "lidarjitter")  # warm b's caches with other work first
    for i, cond, fail in ((2, "sun", None), (1, "rain", "lidarjitter"), (2, "night", "motionblur")):
        fa, fb = a.frame(i, cond, fail), b.frame(i, cond, fail)
        for name, arr in _arrays(fa).items():
            assert arr.tobytes() == _arrays(fb)[name].tobytes(), (name, i, cond, fail)
    other = SyntheticWorld(WorldConfig(width=96, height=64, seed=12)).frame(2)
    assert other.rgb.tobytes() != a.frame(2).rgb.tobytes()
    assert other.labels.tobytes() != a.frame(2).labels.tobytes()


def test_outputs_are_copies_the_caller_may_edit(world):
    f = world.frame(2)
    f.labels[:] = 0
    f.rgb[:] = 0
    again = world.frame(2)
    assert again.labels.any() and again.rgb.any()


def test_the_road_never_ends(world):
    """Objects are generated lazily along the road: minutes into the drive is as full as t = 0."""
    far = world.render(600.0)  # several kilometres down the road
    assert world.trajectory.x(600.0) > 3000.0
    assert len(set(np.unique(far.labels).tolist())) >= 6
    assert len(far.lidar) > 10_000


def test_the_ego_moves_so_consecutive_frames_differ(world, frames):
    assert world.trajectory.x(frames[1].t) > world.trajectory.x(frames[0].t) + 2.0
    assert (frames[0].labels != frames[1].labels).mean() > 0.05
    assert np.abs(frames[0].depth - frames[1].depth).mean() > 0.1


def test_labels_use_deliver_ids_and_cover_the_street(world):
    ids = set()
    for i in range(8):
        ids |= set(np.unique(world.frame(i).labels).tolist())
    assert ids <= set(SCENE_CLASSES), sorted(ids)
    must = {"Road", "RoadLine", "SideWalk", "Building", "Sky", "Cars", "Pole", "Vegetation"}
    assert {DELIVER_CLASSES[i] for i in ids} >= must


def test_lane_paint_is_visible_only_in_rgb(exact_world):
    f = exact_world.frame(1)
    paint, road = f.labels == ROADLINE, f.labels == ROAD
    assert paint.sum() > 20 and road.sum() > 500
    # RGB: paint is far brighter than asphalt.
    grey = f.rgb.astype(float).mean(axis=2)
    assert grey[paint].mean() > grey[road].mean() + 60
    # Depth: paint lies exactly on the road plane (camera z of the plane z = 0 along each ray).
    rig = exact_world.rig
    origin_z = rig.camera_origin(exact_world.trajectory.base_origin(f.t))[2]
    plane = (-origin_z / rig.camera_dirs[:, 2]).reshape(f.depth.shape)
    for mask in (paint, road):
        m = mask & (f.depth > 0)
        np.testing.assert_allclose(f.depth[m], plane[m], rtol=1e-5)
    # LiDAR: road and paint points follow one reflectivity law (no paint contrast).
    assert GROUND_REFLECTIVITY[ROADLINE] == GROUND_REFLECTIVITY[ROAD]
    pts, lab = f.lidar, f.lidar_labels
    ground = np.isin(lab, (ROAD, ROADLINE))
    assert (lab == ROADLINE).sum() > 5
    cos = np.abs(pts[ground, 2]) / np.linalg.norm(pts[ground, :3], axis=1)
    expect = GROUND_REFLECTIVITY[ROAD] * (0.3 + 0.7 * cos)
    np.testing.assert_allclose(pts[ground, 3], expect, atol=2e-3)


def test_night_rgb_is_dark_and_noisy_while_depth_and_lidar_are_unchanged(world):
    day, night = world.frame(2, "sun"), world.frame(2, "night")
    assert night.rgb.mean() < 0.5 * day.rgb.mean()
    # Noise: neighbouring sky pixels (a smooth gradient by day) differ much more at night.
    sky = (night.labels == SKY)[:, :-1] & (night.labels == SKY)[:, 1:]

    def step(img: np.ndarray) -> float:
        return np.abs(np.diff(img.astype(float).mean(axis=2), axis=1))[sky].mean()

    assert step(night.rgb) > 2 * step(day.rgb)
    assert night.depth.tobytes() == day.depth.tobytes()
    assert night.lidar.tobytes() == day.lidar.tobytes()


def test_fog_cuts_rgb_contrast_and_depth_range(world):
    sun, fog = world.frame(0, "sun"), world.frame(0, "fog")
    far = (sun.depth > 25.0) | (sun.labels == SKY)  # everything beyond half the visibility
    assert fog.rgb[far].astype(float).std() < 0.4 * sun.rgb[far].astype(float).std()
    assert fog.rgb.astype(float).std() < 0.8 * sun.rgb.astype(float).std()
    assert sun.depth.max() > 50.0
    noise = 3 * world.config.depth_noise * 45.0**2  # depth noise is clipped at 3 sigma
    assert 0 < fog.depth.max() <= 45.0 + noise and (fog.depth > 0).sum() < (sun.depth > 0).sum()
    assert np.linalg.norm(fog.lidar[:, :3], axis=1).max() <= 1.6 * 45.0 + 0.1
    assert np.linalg.norm(sun.lidar[:, :3], axis=1).max() > 80.0


def test_events_come_from_motion_not_from_the_image(world):
    t = world.frame(1).t
    still = world.events(t, t)  # no time passes: no change, no noise
    assert np.all(still == 128)
    moving = world.events(t - 1 / 30, t)
    active = moving != 128
    assert 0.02 < active.mean() < 0.6
    assert (moving > 128).any() and (moving < 128).any()  # both polarities
    # Events sit on intensity edges: active pixels have a far larger local RGB gradient.
    grey = world.frame(1).rgb.astype(float).mean(axis=2)
    grad = np.abs(np.diff(grey, axis=1))[:-1, :] + np.abs(np.diff(grey, axis=0))[:, :-1]
    act = active[:-1, :-1]
    assert grad[act].mean() > 1.5 * grad[~act].mean()


def test_lidar_is_a_spinning_multi_beam_scan(world, frames):
    cfg = world.config
    pts = frames[0].lidar
    assert (
        0.5 * cfg.lidar_rings * cfg.lidar_columns < len(pts) <= cfg.lidar_rings * cfg.lidar_columns
    )
    r = np.linalg.norm(pts[:, :3], axis=1)
    assert r.min() >= cfg.lidar_range[0] - 0.05 and r.max() <= cfg.lidar_range[1] + 0.05
    elev = np.degrees(np.arcsin(pts[:, 2] / r))
    rings = np.linspace(*cfg.lidar_fov_deg, cfg.lidar_rings)
    assert np.abs(elev[:, None] - rings[None]).min(axis=1).max() < 0.05  # on its ring's cone
    az = np.arctan2(pts[:, 1], pts[:, 0])
    assert np.ptp(az) > 6.0  # all around the vehicle
    assert pts[:, 3].min() >= 0.0 and pts[:, 3].max() <= 1.0
    # Intensity follows material: traffic signs (retro-reflective) outshine the road.
    lab = frames[0].lidar_labels
    signs = np.concatenate([f.lidar[f.lidar_labels == class_id("TrafficSign"), 3] for f in frames])
    assert signs.size >= 20  # the drive passes signs: the comparison below has points to compare
    assert signs.mean() > 2 * pts[lab == ROAD, 3].mean()


def test_hha_encodes_ground_and_walls(frames):
    f = frames[0]
    hha = f.hha()
    assert hha.shape == (*f.depth.shape, 3) and hha.dtype == np.uint8
    inner = np.zeros_like(f.labels, bool)
    inner[2:-2, 2:-2] = True
    road = (f.labels == ROAD) & inner & (f.depth > 0) & (f.depth < 15)
    building = (f.labels == class_id("Building")) & inner & (f.depth > 0) & (f.depth < 30)
    assert np.median(hha[road, 2]) < 30  # normal close to gravity's "up"
    assert np.median(hha[road, 1]) <= 2  # on the ground
    assert 100 < np.median(hha[building, 2]) < 155  # walls: about 90 degrees
    assert np.all(hha[f.depth == 0] == 0)


@pytest.mark.parametrize("bad", [{"condition": "snow"}, {"failure": "blur"}])
def test_unknown_condition_or_failure_lists_valid_names(world, bad):
    with pytest.raises(ValueError, match="valid"):
        world.render(0.0, **bad)
