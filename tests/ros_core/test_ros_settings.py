"""Settings: the one PARAMETERS table, validation with clear errors, calibration files."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from anyseg_ros.core.settings import (
    PARAM_TYPES,
    PARAMETER_NAMES,
    PARAMETERS,
    InputSettings,
    Settings,
    SettingsError,
    SyncSettings,
    closest_name,
    flatten_parameters,
    nest_parameters,
    unknown_name_hint,
)

IDENTITY = [1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 1.0]
# LiDAR x forward, y left, z up -> camera x right, y down, z forward; LiDAR 0.2 m above the camera.
LIDAR_TO_CAM = [0.0, -1, 0, 0, 0, 0, -1, -0.2, 1, 0, 0, 0, 0, 0, 0, 1]


def read_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def build(**values):
    base = {"checkpoint": "model.pt", "lidar_extrinsic": LIDAR_TO_CAM}
    return Settings.from_parameters({**base, **values}, read_yaml=read_yaml)


def test_table_is_the_single_source():
    assert len(PARAMETER_NAMES) == len(set(PARAMETER_NAMES))
    for p in PARAMETERS:
        assert p.type in PARAM_TYPES and p.description.strip(), p
    for name in (
        "checkpoint",
        "device",
        "modalities",
        "slop_ms",
        "timeout_ms",
        "wait_ms",
        "anchor_priority",
        "lidar_extrinsic",
        "calibration_file",
        "max_image_pixels",
        "publish_color",
        "palette",
        "lidar.timeout_ms",
        "rgb.timeout_ms",
    ):
        assert name in PARAMETER_NAMES


def test_defaults_validate():
    s = build()
    assert s.modalities == ("rgb", "depth", "event", "lidar")
    assert s.sync.slop_ns == 15_000_000 and s.sync.wait_ns == 50_000_000
    assert s.sync.timeout_ns == dict.fromkeys(s.modalities, 500_000_000)
    assert s.sync.anchor_priority == ("rgb", "depth", "lidar", "event")
    assert s.inputs.extrinsic_matrix.shape == (4, 4) and s.palette is None and s.device == "auto"
    with pytest.raises(AttributeError):
        s.device = "cpu"  # frozen


def test_per_sensor_timeout_override_and_subset():
    s = build(**{"modalities": ["lidar", "rgb"], "timeout_ms": 400.0, "lidar.timeout_ms": 250.0})
    assert s.modalities == ("rgb", "lidar")  # canonical order
    assert s.sync.timeout_ns == {"rgb": 400_000_000, "lidar": 250_000_000}
    assert s.sync.anchor_priority == ("rgb", "lidar")  # disabled ones filtered out


def test_lidar_not_needed_without_lidar():
    s = Settings.from_parameters({"checkpoint": "m.pt", "modalities": ["rgb", "depth"]})
    assert s.inputs.lidar_extrinsic is None


def test_offline_callers_need_no_checkpoint():
    values = {"modalities": ["depth", "rgb"], "slop_ms": 20.0, "lidar_extrinsic": LIDAR_TO_CAM}
    sync = SyncSettings.from_parameters(values)
    assert sync.modalities == ("rgb", "depth") and sync.slop_ns == 20_000_000
    assert InputSettings.from_parameters(values).lidar_extrinsic is None  # no lidar enabled
    assert InputSettings.from_parameters(
        {"lidar_extrinsic": LIDAR_TO_CAM}
    ).lidar_extrinsic == tuple(LIDAR_TO_CAM)
    # Without a parameter the extrinsic comes from tf (the node refuses to start without tf).
    assert InputSettings.from_parameters({}).lidar_extrinsic is None
    with pytest.raises(SettingsError, match="'slop_ms'"):
        SyncSettings.from_parameters({"slop_ms": 0.0})
    with pytest.raises(SettingsError, match="did you mean 'slop_ms'"):
        SyncSettings.from_parameters({"slop_msec": 10.0})


def test_parameter_names_flatten_and_nest():
    tree = {"slop_ms": 10.0, "lidar": {"timeout_ms": 300.0}, "rgb": {"timeout_ms": 0.0}}
    flat = {"slop_ms": 10.0, "lidar.timeout_ms": 300.0, "rgb.timeout_ms": 0.0}
    assert flatten_parameters(tree) == flat
    assert nest_parameters(flat) == tree


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("checkpoint", "", "model checkpoint"),
        ("device", "gpu", "auto, cpu, cuda, cuda:N"),
        ("device", "cuda:x", "auto, cpu"),
        ("modalities", ["rgb", "thermal"], "valid"),
        ("modalities", [], "at least one"),
        ("modalities", ["rgb", "rgb"], "repeat"),
        ("modalities", "rgb", "list"),
        ("slop_ms", 0.0, "> 0"),
        ("slop_ms", float("nan"), "finite"),
        ("timeout_ms", -1.0, "> 0"),
        ("lidar.timeout_ms", -5.0, ">= 0"),
        ("wait_ms", -1.0, ">= 0"),
        ("wait_ms", True, "number"),
        ("anchor_priority", ["thermal"], "valid"),
        ("anchor_priority", [], "at least one enabled"),
        ("lidar_extrinsic", [1.0] * 15, "16 finite"),
        ("lidar_extrinsic", list(np.array(LIDAR_TO_CAM).reshape(4, 4).T.reshape(-1)), "transposed"),
        ("lidar_extrinsic", [2.0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "rotation"),
        ("max_image_pixels", 0, "positive"),
        ("publish_color", 1, "true or false"),
        ("palette", [255, 0], "triples"),
        ("palette", [0, 0, 300], "0..255"),
        ("not_a_parameter", 1, "unknown parameter"),
        # Below 1 us a duration rounds to 0 ns (it used to end in a traceback), above an hour
        # it is a mistake (and 1e308 ms overflowed).
        ("slop_ms", 1e-7, "between 0.001 ms (1 us)"),
        ("timeout_ms", 1e-7, "between 0.001 ms"),
        ("wait_ms", 1e-7, "0 or between"),
        ("lidar.timeout_ms", 1e-4, "0 or between"),
        ("timeout_ms", 1e308, "an hour"),
        ("lidar.max_age_ms", -1.0, ">= 0"),
        ("rgb.max_age_ms", "100", "number"),
        ("max_clock_offset_ms", float("inf"), "finite"),
    ],
)
def test_each_bad_value_names_parameter_value_and_what_is_allowed(name, value, fragment):
    with pytest.raises(SettingsError) as e:
        build(**{name: value})
    msg = str(e.value)
    assert e.value.name == name and f"'{name}'" in msg and repr(value) in msg and fragment in msg


def test_max_age_clock_offset_and_the_smallest_durations():
    s = build(**{"lidar.max_age_ms": 100, "max_clock_offset_ms": 0, "slop_ms": 0.001})
    assert s.sync.max_age_ns == {"rgb": 0, "depth": 0, "event": 0, "lidar": 100_000_000}
    assert s.sync.max_clock_offset_ns == 0 and s.sync.slop_ns == 1000
    assert build().sync.max_clock_offset_ns == 500_000_000


def test_live_parameters_are_the_runtime_ones():
    live = {p.name for p in PARAMETERS if p.live}
    assert {"checkpoint", "device", "modalities", "calibration_file"}.isdisjoint(live)
    assert {"slop_ms", "wait_ms", "timeout_ms", "lidar.timeout_ms", "publish_color"} <= live
    assert {"lidar.max_age_ms", "max_clock_offset_ms", "palette", "lidar_extrinsic"} <= live


def test_closest_name():
    assert closest_name("slop_msx") == "slop_ms" and closest_name("zzzz") is None
    assert unknown_name_hint("lidar.timeout") == "did you mean 'lidar.timeout_ms'? "


def test_lidar_without_extrinsic_is_an_error():
    with pytest.raises(SettingsError, match="lidar_extrinsic.*lidar is enabled"):
        Settings.from_parameters({"checkpoint": "m.pt"})


def test_calibration_file(tmp_path):
    calib = tmp_path / "calibration.yaml"
    calib.write_text(
        yaml.safe_dump(
            {
                "lidar_extrinsic": LIDAR_TO_CAM,
                "camera": {
                    "K": [400.0, 0, 160, 0, 400.0, 120, 0, 0, 1],
                    "D": [0.0] * 5,
                    "width": 320,
                    "height": 240,
                },
            }
        )
    )
    s = Settings.from_parameters(
        {"checkpoint": "m.pt", "calibration_file": str(calib)}, read_yaml=read_yaml
    )
    cam = s.inputs.camera
    assert s.inputs.lidar_extrinsic == tuple(LIDAR_TO_CAM)
    assert (cam.width, cam.height) == (320, 240) and cam.D is None and cam.K[0, 0] == 400.0
    with pytest.raises(SettingsError, match="set only one"):
        build(calibration_file=str(calib))


def test_bad_calibration_files(tmp_path):
    with pytest.raises(SettingsError, match="calibration_file.*cannot be read.*FileNotFoundError"):
        Settings.from_parameters(
            {"checkpoint": "m.pt", "calibration_file": str(tmp_path / "nope.yaml")}, read_yaml
        )
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"lidar_extrinsic": [1, 2, 3]}))
    with pytest.raises(SettingsError, match="16 finite"):
        Settings.from_parameters({"checkpoint": "m.pt", "calibration_file": str(bad)}, read_yaml)
    bad.write_text(yaml.safe_dump({"lidar_extrinsic": IDENTITY, "K": [1, 0, 0, 0, 1, 0, 0, 0, 1]}))
    with pytest.raises(SettingsError, match="width, height"):
        Settings.from_parameters({"checkpoint": "m.pt", "calibration_file": str(bad)}, read_yaml)
