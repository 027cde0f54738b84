"""Every condition and failure changes exactly the modalities it claims to (config.AFFECTS), and
in the way the README says."""

from __future__ import annotations

import numpy as np
import pytest

from anyseg_sim import AFFECTS, CONDITIONS, FAILURES
from anyseg_sim.sensors import EVENT_LOWRES_FACTOR, LIDAR_JITTER_M

INDEX = 1


def _modalities(f) -> dict[str, bytes]:
    return {
        "rgb": f.rgb.tobytes(),
        "depth": f.depth.tobytes(),
        "event": f.event.tobytes(),
        "lidar": f.lidar.tobytes() + f.lidar_labels.tobytes(),
        "labels": f.labels.tobytes(),
    }


CASES = [(c, "sun") for c in CONDITIONS if c != "sun"] + [
    (f, b) for f in FAILURES for b in ("sun", "night")
]


@pytest.mark.parametrize(("case", "base"), CASES)
def test_case_changes_exactly_its_modalities(world, case, base):
    if case in CONDITIONS:  # a condition against sun
        ref, other = world.frame(INDEX, "sun"), world.frame(INDEX, case)
    else:  # a failure on top of a condition, against that condition alone
        ref, other = world.frame(INDEX, base), world.frame(INDEX, base, case)
    a, b = _modalities(ref), _modalities(other)
    changed = {m for m in a if a[m] != b[m]}
    assert changed == set(AFFECTS[case]), (
        f"{case} on {base}: changed {sorted(changed)}, declared {sorted(AFFECTS[case])}"
    )
    assert "labels" not in changed  # the scene itself never changes


def test_exposure_failures(world):
    base = world.frame(INDEX).rgb.astype(float)
    over = world.frame(INDEX, "sun", "overexposure").rgb.astype(float)
    under = world.frame(INDEX, "sun", "underexposure").rgb.astype(float)
    assert (over >= 250).mean() > 0.5 > (base >= 250).mean()
    assert under.mean() < 0.5 * base.mean()
    assert under.std() < 0.5 * base.std()


def _edge_energy(im: np.ndarray) -> float:
    return np.abs(np.diff(im, axis=0)).mean() + np.abs(np.diff(im, axis=1)).mean()


def test_motion_blur_smooths_the_image(world):
    base = world.frame(INDEX).rgb.astype(float)
    blur = world.frame(INDEX, "sun", "motionblur").rgb.astype(float)
    assert _edge_energy(blur) < 0.8 * _edge_energy(base)
    assert abs(blur.mean() - base.mean()) < 5


def test_low_resolution_events_are_blocky(world):
    ev = world.frame(INDEX, "sun", "eventlowres").event
    f = EVENT_LOWRES_FACTOR
    h, w = (s // f * f for s in ev.shape)
    blocks = ev[:h, :w].reshape(h // f, f, w // f, f)
    assert np.all(blocks == blocks[:, :1, :, :1])
    assert (ev != 128).any()


def test_lidar_jitter_moves_points_but_keeps_the_scan(world):
    base = world.frame(INDEX).lidar
    jit = world.frame(INDEX, "sun", "lidarjitter").lidar
    assert base.shape == jit.shape
    d = np.linalg.norm(jit[:, :3] - base[:, :3], axis=1)
    assert 0.5 * LIDAR_JITTER_M < np.median(d) < 3 * LIDAR_JITTER_M
    np.testing.assert_array_equal(jit[:, 3], base[:, 3])


def test_rain_streaks_rgb_and_clutters_lidar(world):
    sun, rain = world.frame(INDEX), world.frame(INDEX, "rain")
    near = np.linalg.norm(rain.lidar[:, :3], axis=1) < 6.0
    clutter = rain.lidar_labels == 255
    assert clutter.sum() > 10 and near[clutter].all()
    assert len(rain.lidar) - clutter.sum() < len(sun.lidar)  # real returns are lost
    assert (sun.lidar_labels != 255).all()
