"""Typed configs: YAML + overrides, unknown keys listed, types checked, round trip."""

import pytest
import yaml

from training.config import (
    ConfigError,
    from_dict,
    load_config,
    parse_override,
    save_config,
    to_dict,
    valid_keys,
)


def test_defaults_yaml_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 0.01\n  epochs: 3\nmodel:\n  modalities: [rgb, lidar]\n")
    cfg = load_config(
        f, ["optim.lr=1e-3", "data.input_size=[64,80]", "loss.umd=0", "run.amp=false"]
    )
    assert cfg.optim.lr == pytest.approx(1e-3)  # override beats file
    assert cfg.optim.epochs == 3
    assert cfg.model.modalities == ["rgb", "lidar"]
    assert cfg.data.input_size == [64, 80]
    assert cfg.loss.umd == 0.0 and isinstance(cfg.loss.umd, float)
    assert cfg.run.amp is False
    assert cfg.model.name == "anyseg_tiny"  # untouched default


def test_unknown_keys_list_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="optim.lr"):
        load_config(None, ["optim.learning_rate=1"])
    with pytest.raises(ConfigError, match="valid keys"):
        load_config(None, ["nosection.x=1"])
    f = tmp_path / "bad.yaml"
    f.write_text("loss:\n  madd: 1\n")
    with pytest.raises(ConfigError, match="loss.mad"):
        load_config(f)


def test_type_errors_and_choices():
    with pytest.raises(ConfigError, match="integer"):
        load_config(None, ["optim.epochs=2.5"])
    with pytest.raises(ConfigError, match="true/false"):
        load_config(None, ["run.amp=3"])
    with pytest.raises(ConfigError, match="per_modality"):
        load_config(None, ["model.norm=weird"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("optim.lr")
    with pytest.raises(ConfigError, match="pretrained"):
        load_config(None, ["student.init=mit"])


def test_round_trip_and_save(tmp_path):
    cfg = load_config(None, ["optim.lr=0.002", "student.init=scratch"])
    again = from_dict(to_dict(cfg))
    assert again == cfg
    p = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert from_dict(yaml.safe_load(p.read_text())) == cfg
    assert "loss.cmd" in valid_keys()


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "training" / "configs"
    files = sorted(root.glob("*.yaml"))
    assert {"smoke.yaml", "synthetic.yaml"} <= {f.name for f in files}
    for f in files:
        load_config(f)


def test_every_deliver_failure_name_is_a_valid_filter():
    from training.data.deliver import FAILURES

    for name in ("keep", "drop", "only", *FAILURES):
        assert load_config(None, [f"data.failures={name}"]).data.failures == name
    with pytest.raises(ConfigError, match="motionblur"):
        load_config(None, ["data.failures=blur"])


def test_teacher_that_saw_other_inputs_is_refused():
    """B2: a teacher trained on other representations or another input size does not fit."""
    from types import SimpleNamespace

    from anyseg_model.representations import Representation
    from training.distill import teacher_mismatch

    reps = {"rgb": Representation("rgb"), "depth": Representation("depth_metric")}
    data = SimpleNamespace(modalities=("rgb", "depth"), representations=reps, input_size=(96, 128))
    fits = SimpleNamespace(representations=dict(reps), input_size=(96, 128))
    assert teacher_mismatch(fits, data) == ""
    hha = SimpleNamespace(
        representations={**reps, "depth": Representation("image")}, input_size=(96, 128)
    )
    assert "depth: teacher {'name': 'image'" in teacher_mismatch(hha, data)
    params = SimpleNamespace(
        representations={**reps, "depth": Representation("depth_metric", {"max_range_m": 40.0})},
        input_size=(96, 128),
    )
    assert "max_range_m" in teacher_mismatch(params, data)
    size = SimpleNamespace(representations=dict(reps), input_size=(48, 64))
    assert "input size: teacher [48, 64] vs data [96, 128]" in teacher_mismatch(size, data)


def test_shipped_configs_load_and_hold_their_recipes():
    from pathlib import Path

    configs = Path(__file__).resolve().parents[2] / "training" / "configs"
    for f in sorted(configs.glob("*.yaml")):
        load_config(f)  # every key known, every value valid
    deliver = load_config(configs / "deliver_b0.yaml")
    assert deliver.student.init == "mit" and deliver.model.pretrained
    assert deliver.optim.grad_clip > 0 and deliver.run.amp  # clipping and AMP on (CUDA)
    assert deliver.run.eval_protocol == "paper" and deliver.loss.mad == 2.0  # 50 / 25
    muses = load_config(configs / "muses_b0.yaml")
    assert muses.model.modalities == ["rgb", "event", "lidar"]
    assert muses.loss.mad == pytest.approx(50 / 19, abs=0.005)
    assert muses.optim.lr == pytest.approx(1.2e-4)
