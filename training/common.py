"""What every training script shares: its command line, the run folder, and the data.

Command line: ``--config FILE`` (YAML, default: the built-in synthetic defaults), ``--out DIR``,
``--data SOURCE`` (shorthand for ``data.source=``), ``--resume``, then any ``key=value``
overrides. The resolved config is written to ``<out>/config.yaml`` before anything runs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from anyseg_model.metrics import SubsetScores
from anyseg_model.model import AnySegModel, create_model
from anyseg_model.preprocess import is_dense
from anyseg_model.representations import IMAGENET_MEAN, IMAGENET_STD, Representation

from .config import Config, ConfigError, load_config, save_config, to_dict
from .data.registry import EncodedDataset, build_raw
from .data.transforms import EvalTransform, JointTransform
from .engine import Runtime, setup_runtime


def base_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", help="YAML config (default: built-in synthetic defaults)")
    p.add_argument("--out", help="run folder: checkpoints, logs, config.yaml, eval.json")
    p.add_argument(
        "--data",
        help="data source: synthetic | synthetic:DIR | deliver:PATH | muses:PATH | bag:PATH",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides, e.g. optim.lr=1e-3"
    )
    return p


def prepare_run(args: argparse.Namespace, default_out: str) -> tuple[Config, Runtime, Path]:
    """Config (file + overrides), runtime (seed, threads, DDP), run folder with config.yaml."""
    overrides = list(args.overrides) + ([f"data.source={args.data}"] if args.data else [])
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        raise SystemExit(f"config error: {e}") from None
    r = cfg.run
    rt = setup_runtime(r.device, r.seed, r.threads, r.deterministic)
    out = Path(args.out or default_out)
    if rt.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    return cfg, rt, out


@dataclass
class DataBundle:
    train: EncodedDataset | None
    val: EncodedDataset
    classes: tuple[str, ...]
    palette: list
    modalities: tuple[str, ...]
    representations: dict[str, Representation]
    input_size: tuple[int, int]

    def describe(self) -> dict[str, Any]:
        """save_checkpoint's description arguments: what the node needs to run the model."""
        return {
            "classes": list(self.classes),
            "palette": [list(c) for c in self.palette],
            "representations": self.representations,
            "input_size": list(self.input_size),
        }


def _main_first(rt: Runtime, fn):
    """Run ``fn`` on rank 0 first (it may generate data), then on the other ranks."""
    if rt.distributed and not rt.is_main:
        dist.barrier()
    value = fn()
    if rt.distributed and rt.is_main:
        dist.barrier()
    return value


def build_data(
    cfg: Config,
    rt: Runtime,
    *,
    train: bool = True,
    source: str | None = None,
    representations: dict[str, Representation] | None = None,
) -> DataBundle:
    """Train (augmented) and val (resized only) data sets of the configured source.
    ``representations`` (e.g. a checkpoint's) replace the source's own."""
    d = cfg.data
    source = source or d.source
    try:
        raw_val = _main_first(rt, lambda: build_raw(source, d.val_split, cfg))
        raw_train = (
            _main_first(rt, lambda: build_raw(source, d.train_split, cfg)) if train else None
        )
    except (ValueError, OSError) as e:  # a missing or partial data set: one line, no traceback
        raise SystemExit(f"data error: {e}") from None
    reps = {m: (representations or raw_val.representations())[m] for m in raw_val.modalities}
    dense = {m: is_dense(m, reps[m]) for m in raw_val.modalities}
    size = (d.input_size[0], d.input_size[1])
    rgb = reps.get("rgb")
    mean = tuple(rgb.params.get("mean", IMAGENET_MEAN)) if rgb else IMAGENET_MEAN
    std = tuple(rgb.params.get("std", IMAGENET_STD)) if rgb else IMAGENET_STD
    a = cfg.augment
    if a.enabled:
        tf = JointTransform(
            size,
            dense,
            scale=tuple(a.scale),
            hflip=a.hflip,
            jitter=a.jitter,
            blur=a.blur,
            rgb_mean=mean,
            rgb_std=std,
        )
    else:
        tf = EvalTransform(size, dense)
    seed = cfg.run.seed + 7_919 * rt.rank
    train_ds = (
        EncodedDataset(raw_train, tf, cache=d.cache, seed=seed, representations=reps)
        if raw_train is not None
        else None
    )
    val_ds = EncodedDataset(raw_val, EvalTransform(size, dense), cache=False, representations=reps)
    return DataBundle(
        train_ds,
        val_ds,
        tuple(raw_val.classes),
        list(raw_val.palette),
        tuple(raw_val.modalities),
        reps,
        size,
    )


def build_model(cfg: Config, data: DataBundle, pretrained: str | None = None) -> AnySegModel:
    """The configured architecture (cfg.model) for the data's classes and modalities;
    ``pretrained``: a local SegFormer ``mit_b*.pth`` for the encoder."""
    m = cfg.model
    try:
        return create_model(
            m.name,
            len(data.classes),
            data.modalities,
            norm=m.norm,
            fusion=m.fusion,
            head_norm=m.head_norm,
            decoder_dim=m.decoder_dim or None,
            drop_path=m.drop_path,
            dropout=m.dropout,
            pretrained=pretrained or None,
        )
    except (ValueError, OSError, RuntimeError) as e:  # bad pretrained file, unknown option
        raise SystemExit(f"model error: {e}") from None


def apply_sync_bn(model: AnySegModel, cfg: Config, rt: Runtime) -> AnySegModel:
    """``model.sync_bn``: under DDP on CUDA, the head's BatchNorm becomes SyncBatchNorm
    (statistics over the global batch; with batch 4 per GPU one GPU's statistics are noisy).
    A single process has nothing to synchronise (no-op); CPU DDP cannot (SyncBatchNorm has
    GPU kernels only), which is an error rather than a silent fallback."""
    if not cfg.model.sync_bn or not rt.distributed:
        return model
    if rt.device.type != "cuda":
        raise SystemExit(
            f"model.sync_bn=true needs DDP on CUDA (SyncBatchNorm has no {rt.device.type} "
            "kernels); set model.sync_bn=false"
        )
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def write_scores(
    scores: SubsetScores, out: Path, name: str = "eval.json", extra: dict | None = None
) -> dict:
    """Write ``SubsetScores.to_dict()`` (plus ``extra`` keys) as JSON and return it."""
    d = scores.to_dict()
    if extra:
        d.update(extra)
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(d, indent=1))
    return d


def run_meta(cfg: Config, role: str, **kw: Any) -> dict[str, Any]:
    """Plain data stored in checkpoints' meta: the resolved config and what made the file."""
    return {"role": role, "config": to_dict(cfg), **kw}


def subset_list(spec: str, modalities: Sequence[str]) -> list[tuple[str, ...]] | None:
    """``all`` -> None (every subset); ``full`` -> just the full set."""
    return None if spec == "all" else [tuple(modalities)]
