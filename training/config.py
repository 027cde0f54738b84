"""Typed training configuration: dataclasses filled from YAML, then ``key=value`` overrides.

A config file has one mapping per section (``model:``, ``data:``, ...). Overrides on the command
line use dotted keys (``optim.lr=1e-3``, ``data.input_size=[96,128]``, ``loss.umd=0``); values are
parsed as YAML and then checked against the field's type. Unknown sections or keys are errors that
list the valid ones, so a typo never silently trains the wrong thing. The resolved config is
written next to every run (``config.yaml``) and stored inside its checkpoints.

Defaults are the small CPU setting on the synthetic world; ``configs/deliver_b0.yaml`` spells out
the reference recipe of docs/method.md section 6.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from anyseg_model.modalities import MODALITIES

# DELIVER's sensor-failure scene suffixes (the DELIVER loader filters scenes by them).
DELIVER_FAILURES = ("motionblur", "overexposure", "underexposure", "lidarjitter", "eventlowres")


@dataclass
class ModelConfig:
    name: str = "anyseg_tiny"  # a name of anyseg_model.list_models()
    norm: str = "shared"  # shared | per_modality (UMMKD: shared kernels, per-modality norms)
    fusion: str = "mean"  # mean (AnySeg) | gated (presence-aware per-pixel softmax over streams)
    head_norm: str = "batch"  # batch | per_size (head BatchNorm statistics per subset size)
    sync_bn: bool = False  # DDP on CUDA: the head's BatchNorm as SyncBatchNorm (batch norm only)
    decoder_dim: int = 0  # 0 = the variant's default width
    drop_path: float = 0.1
    dropout: float = 0.1
    modalities: list[str] = field(default_factory=lambda: list(MODALITIES))
    pretrained: str = ""  # local SegFormer mit_b*.pth to start the encoder from ("" = none)


@dataclass
class DataConfig:
    source: str = "synthetic"  # synthetic | deliver:PATH | muses:PATH | (registry prefixes)
    input_size: list[int] = field(default_factory=lambda: [96, 128])  # (H, W) the network sees
    train_split: str = "train"
    val_split: str = "val"
    representation: str = "raw"  # raw: node representations of raw arrays | png: dataset PNGs
    depth_png: str = "hha"  # DELIVER PNG depth input when representation=png: hha | depth
    conditions: list[str] = field(default_factory=list)  # DELIVER condition filter ([] = all)
    failures: str = "keep"  # keep | drop | only | a DELIVER failure name (e.g. motionblur)
    allow_partial: bool = False  # DELIVER: accept fewer frames than the full split (fakes, subsets)
    max_samples: int = 0  # cap per split (0 = all); for quick runs
    cache: bool = True  # keep encoded samples in memory after the first epoch
    num_workers: int = 0
    # Synthetic world (source=synthetic): generated once into cache_dir if missing.
    cache_dir: str = "runs/data"
    world_seed: int = 0
    train_frames: int = 1200
    val_frames: int = 240
    train_worlds: int = 8  # distinct maps per split; val/test maps are never trained on
    val_worlds: int = 2
    world_size: list[int] = field(default_factory=lambda: [96, 128])  # (H, W) rendered
    world_conditions: str = "all"
    world_failures: str = "none"


@dataclass
class AugmentConfig:
    enabled: bool = True
    scale: list[float] = field(default_factory=lambda: [0.5, 2.0])  # random resized crop
    hflip: float = 0.5  # all modalities and the label
    jitter: float = 0.2  # colour jitter probability, RGB only
    blur: float = 0.2  # 3x3 Gaussian blur probability, RGB only


@dataclass
class OptimConfig:
    epochs: int = 20
    batch_size: int = 8
    lr: float = 6e-4
    weight_decay: float = 0.01  # never on 1-D parameters (biases, norms)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_epochs: float = 1.0
    warmup_ratio: float = 0.1  # warmup starts at this fraction of lr
    power: float = 0.9  # poly decay exponent, per iteration
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    max_steps: int = 0  # stop after this many steps in total (0 = full schedule); smoke tests


@dataclass
class LossConfig:
    ohem_thresh: float = 0.7
    ohem_min_kept: float = 0.0625  # 1/16 of the valid pixels
    ohem_per_sample: bool = False  # hard-pixel selection within each sample, then the mean
    mad: float = 2.0  # per-pixel KL weight; the reference's 50 with mean over K=25 classes
    mad_temperature: float = 1.0
    umd: float = 1.0  # weight of the umd_form below; see losses.py
    umd_form: str = "channel"  # channel (mean channel-wise KL) | reference (height softmax, sum)
    umd_tau: float = 1.0
    cmd: float = 3.0  # pairs form; x10 (the reference's) is 4.7x L_sup's gradient (configs)
    cmd_form: str = "pairs"  # pairs (raw features, mean over p < q) | reference (losses.py)
    ummkd: float = 0.0  # Dou et al. weight 0.5 when used
    ummkd_temperature: float = 2.0


@dataclass
class StudentConfig:
    teacher: str = ""  # teacher checkpoint (the --teacher flag sets it)
    init: str = "teacher"  # scratch | teacher | mit (mit: model.pretrained file)
    dropout_mode: str = "per_sample"  # per_sample | per_batch (reference)
    subset_distribution: str = "anyseg"  # anyseg: P(S) = 1/(M C(M,|S|)) | uniform


@dataclass
class RunConfig:
    seed: int = 3407
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # CUDA only: bf16 where supported, else fp16 with a grad scaler
    threads: int = 0  # torch CPU threads (0 = leave torch's default)
    deterministic: bool = True
    log_every: int = 20  # steps between scalar logs
    eval_every: int = 0  # epochs between validation passes (0 = only at the end)
    eval_subsets: str = "all"  # subsets scored by in-training validation: all | full
    eval_protocol: str = "native"  # native (labels at native size, headline miou) | paper
    # (labels resized to data.input_size by nearest neighbour, headline miou_nan0 over all classes)
    save_every: int = 1  # epochs between resumable checkpoints
    stop_after_epochs: int = 0  # leave after this many epochs of this invocation (time-sliced jobs)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    run: RunConfig = field(default_factory=RunConfig)


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def valid_keys(cfg: Any = None) -> list[str]:
    """Every dotted key a config accepts (``optim.lr``, ...)."""
    cfg = cfg or Config()
    return [
        f"{s.name}.{f.name}"
        for s in dataclasses.fields(cfg)
        for f in dataclasses.fields(getattr(cfg, s.name))
    ]


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp`` (int, float, bool, str, list[...])."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], key)
    if origin is list:
        (inner,) = typing.get_args(tp)
        if isinstance(value, str):  # a bare "rgb,depth" on the command line
            value = [v for v in value.split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {tp}")


def _set(cfg: Config, key: str, value: Any) -> None:
    section, _, name = key.partition(".")
    sections = {f.name for f in dataclasses.fields(cfg)}
    if section not in sections or not name:
        raise ConfigError(f"unknown config key {key!r}; valid keys: {', '.join(valid_keys(cfg))}")
    sub = getattr(cfg, section)
    hints = typing.get_type_hints(type(sub))
    if name not in hints:
        raise ConfigError(
            f"unknown config key {key!r}; valid keys in {section}: "
            f"{', '.join(k for k in valid_keys(cfg) if k.startswith(section + '.'))}"
        )
    setattr(sub, name, _coerce(value, hints[name], key))


def _flatten(data: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of sections, got {type(data).__name__}")
    flat = {}
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: section {section!r} must be a mapping, got {values!r}")
        for k, v in values.items():
            flat[f"{section}.{k}"] = v
    return flat


def parse_override(text: str) -> tuple[str, Any]:
    """``'optim.lr=1e-3'`` -> ``('optim.lr', 0.001)`` (the value parsed as YAML)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not key=value (e.g. optim.lr=1e-3)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({e})") from None
    # YAML reads "1e-3" as a string (no dot); numbers in that form are meant as floats.
    if isinstance(value, str) and any(c in value for c in "eE."):
        with contextlib.suppress(ValueError):
            value = float(value)
    return key.strip(), value


def load_config(
    path: str | Path | None = None, overrides: Sequence[str] = (), base: Config | None = None
) -> Config:
    """Defaults (or ``base``), then the YAML file (if any), then the ``key=value`` overrides."""
    cfg = copy.deepcopy(base) if base is not None else Config()
    if path:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        for k, v in _flatten(data, str(path)).items():
            _set(cfg, k, v)
    for text in overrides:
        _set(cfg, *parse_override(text))
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Cross-field checks with messages that name the allowed values."""
    choices = {
        "model.norm": (cfg.model.norm, ("shared", "per_modality")),
        "model.fusion": (cfg.model.fusion, ("mean", "gated")),
        "model.head_norm": (cfg.model.head_norm, ("batch", "per_size")),
        "loss.umd_form": (cfg.loss.umd_form, ("channel", "reference")),
        "loss.cmd_form": (cfg.loss.cmd_form, ("pairs", "reference")),
        "run.eval_protocol": (cfg.run.eval_protocol, ("native", "paper")),
        "data.representation": (cfg.data.representation, ("raw", "png")),
        "data.depth_png": (cfg.data.depth_png, ("hha", "depth")),
        "data.failures": (cfg.data.failures, ("keep", "drop", "only", *DELIVER_FAILURES)),
        "student.init": (cfg.student.init, ("scratch", "teacher", "mit")),
        "student.dropout_mode": (cfg.student.dropout_mode, ("per_sample", "per_batch")),
        "student.subset_distribution": (cfg.student.subset_distribution, ("anyseg", "uniform")),
        "run.eval_subsets": (cfg.run.eval_subsets, ("all", "full")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} not allowed; valid: {list(allowed)}")
    for key, size in (
        ("data.input_size", cfg.data.input_size),
        ("data.world_size", cfg.data.world_size),
    ):
        if len(size) != 2 or min(size) < 32:
            raise ConfigError(f"{key} must be [H, W] with both >= 32, got {size}")
    if len(cfg.augment.scale) != 2 or not 0 < cfg.augment.scale[0] <= cfg.augment.scale[1]:
        raise ConfigError(
            f"augment.scale must be [lo, hi] with 0 < lo <= hi, got {cfg.augment.scale}"
        )
    if cfg.model.sync_bn and cfg.model.head_norm == "per_size":
        raise ConfigError("model.sync_bn works with model.head_norm=batch only")
    if cfg.student.init == "mit" and not cfg.model.pretrained:
        raise ConfigError("student.init=mit needs model.pretrained=PATH to a SegFormer mit_b*.pth")
    if cfg.optim.epochs < 1 or cfg.optim.batch_size < 1:
        raise ConfigError("optim.epochs and optim.batch_size must be >= 1")


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict (YAML- and checkpoint-safe)."""
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a config from :func:`to_dict` output (e.g. a checkpoint's meta), checked."""
    cfg = Config()
    for k, v in _flatten(data, "config dict").items():
        _set(cfg, k, v)
    validate(cfg)
    return cfg


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (what the run actually used)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path
