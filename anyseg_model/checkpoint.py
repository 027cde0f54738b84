"""Self-describing checkpoints: architecture, classes, palette, modalities, representations.

A checkpoint is a plain ``torch.save`` dict of tensors, strings, numbers, lists and dicts only,
so it loads with ``torch.load(weights_only=True)``: a file carrying any pickled object is
refused without executing it. The node needs nothing but the path.
"""

from __future__ import annotations

import os
import pickle
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .classes import DELIVER_CLASSES, DELIVER_PALETTE
from .model import AnySegModel, create_model
from .representations import DEFAULT_REPRESENTATIONS, Representation

FORMAT = "anyseg-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, unsafe, or not an AnySeg checkpoint."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode, CPU) and everything that describes it."""

    model: AnySegModel
    classes: tuple[str, ...]
    palette: list[tuple[int, int, int]]
    representations: dict[str, Representation]
    input_size: tuple[int, int] | None  # (H, W) the network runs at; None = native size
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.model.modalities


def _plain(value: Any, where: str) -> Any:
    """Reject anything torch's weights_only loader would refuse, at save time, naming it."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return value
    if isinstance(value, Mapping):
        # int keys stay ints (an optimizer's state is keyed by parameter index)
        return {
            k if isinstance(k, int) else str(k): _plain(v, f"{where}.{k}") for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"checkpoint field {where} has type {type(value).__name__}; use plain data")


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """DELIVER's palette where it has enough colours, then distinct generated ones."""
    extra = [
        ((37 * i) % 256, (91 * i + 60) % 256, (151 * i + 120) % 256) for i in range(num_classes)
    ]
    return [tuple(c) for c in (list(DELIVER_PALETTE) + extra[len(DELIVER_PALETTE) :])[:num_classes]]


def save_checkpoint(
    model: AnySegModel,
    path: str | Path,
    *,
    classes: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    representations: Mapping[str, Representation | Mapping[str, Any] | str] | None = None,
    input_size: Sequence[int] | None = None,
    extra: Mapping[str, Any] | None = None,
    **meta: Any,
) -> Path:
    """Write ``model`` and its description atomically (temp file + rename).

    classes/palette default to DELIVER's for 25 classes; representations default to the raw
    sensor ones (what the node feeds). ``meta`` is free plain data (config, epoch, metrics...);
    ``extra`` holds further tensors/state (optimizer, RNG) for resuming.
    """
    k = model.num_classes
    classes = (
        list(classes)
        if classes is not None
        else (
            list(DELIVER_CLASSES) if k == len(DELIVER_CLASSES) else [f"class_{i}" for i in range(k)]
        )
    )
    palette = (
        [list(map(int, c)) for c in palette]
        if palette is not None
        else [list(c) for c in default_palette(k)]
    )
    if len(classes) != k or len(palette) != k:
        raise ValueError(
            f"model has {k} classes but got {len(classes)} names and {len(palette)} colours"
        )
    reps = representations or {m: DEFAULT_REPRESENTATIONS[m] for m in model.modalities}
    missing = sorted(set(model.modalities) - set(reps))
    if missing:
        raise ValueError(f"no representation given for modalities {missing}")
    reps = {m: _as_rep(reps[m]).to_dict() for m in model.modalities}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": _plain(model.config, "model"),
        "classes": classes,
        "palette": palette,
        "representations": reps,
        "input_size": list(map(int, input_size)) if input_size else None,
        "meta": _plain(meta, "meta"),
        "extra": _plain(dict(extra or {}), "extra"),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    # The writer's pid is in the temp name, so a later writer can tell a killed writer's leftover
    # from a file another live process is still writing.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        os.replace(tmp, path)  # a reader never sees a half-written file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temp files a killed writer of ``path`` left (``.<name>.<pid>.<random>`` whose
    pid is not running, or the pid-less ``.<name>.<random>`` of older versions); returns them."""
    path = Path(path)
    removed = []
    for f in path.parent.glob(f".{path.name}.*"):
        pid = f.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid))):
            continue  # being written right now (by this or another live process)
        f.unlink(missing_ok=True)
        removed.append(f)
    return removed


def _as_rep(r: Representation | Mapping[str, Any] | str) -> Representation:
    return r if isinstance(r, Representation) else Representation.from_dict(r)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, loaded safely; raises CheckpointError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch names the offending global ("Unsupported global: GLOBAL os.system ...").
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise CheckpointError(
                f"checkpoint {str(path)!r} refused: it holds a pickled object "
                f"({found.group(1)}), not plain data"
            ) from None
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable: not a torch file") from None
    except Exception as e:  # truncated, not a torch file, ...
        raise CheckpointError(
            f"checkpoint {str(path)!r} is unreadable: {type(e).__name__}: {e}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an AnySeg checkpoint (no format={FORMAT!r})")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{str(path)!r} has format version {data['version']}; this code reads <= {VERSION}"
        )
    return data


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model and its description from ``path`` (model in eval mode on CPU)."""
    data = read_checkpoint(path)
    cfg = dict(data["model"])
    try:
        model = create_model(cfg.pop("name"), cfg.pop("num_classes"), cfg.pop("modalities"), **cfg)
        model.load_state_dict(data["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} does not build a model: {e}") from None
    model.eval()
    reps = {m: Representation.from_dict(r) for m, r in data["representations"].items()}
    size = tuple(data["input_size"]) if data.get("input_size") else None
    palette = [tuple(c) for c in data["palette"]]
    return Checkpoint(
        model, tuple(data["classes"]), palette, reps, size, dict(data.get("meta") or {})
    )
