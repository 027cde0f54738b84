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
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .classes import DELIVER_CLASSES, DELIVER_PALETTE
from .modalities import MODALITIES
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


# What a checkpoint may claim, checked before anything is allocated (issue 14: a 3.8 MB deflated
# file expanded to 2.27 GB before it was refused; 5e6 classes took 1.49 GB; an input size of
# 100000 x 100000 asked for 27.9 GiB at warm-up).
MAX_ARCHIVE_BYTES = 8 * 2**30  # everything in the file, uncompressed (a b2 with Adam ~0.3 GB)
MAX_EXPANSION = 20  # uncompressed / compressed of a deflated entry; torch.save stores, not deflates
MAX_CLASSES = 65535  # class ids fit uint16 labels, 65535 left for "no label"
MAX_INPUT_SIDE = 8192  # pixels per side of the network input


def _refuse(path: Path, what: str) -> CheckpointError:
    return CheckpointError(f"checkpoint {str(path)!r} refused: {what}")


def _check_archive(path: Path) -> None:
    """Refuse a file whose contents would expand beyond the limits, from the zip directory alone
    (nothing is decompressed or allocated)."""
    if not zipfile.is_zipfile(path):
        if path.stat().st_size > MAX_ARCHIVE_BYTES:
            raise _refuse(path, f"{path.stat().st_size} bytes > {MAX_ARCHIVE_BYTES}")
        return  # not an archive: torch.load says what it is
    try:
        with zipfile.ZipFile(path) as z:
            entries = z.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable: {e}") from None
    total = sum(e.file_size for e in entries)
    if total > MAX_ARCHIVE_BYTES:
        raise _refuse(
            path, f"its contents claim {total} bytes uncompressed (> {MAX_ARCHIVE_BYTES})"
        )
    for e in entries:
        if e.compress_type != zipfile.ZIP_STORED and e.file_size > MAX_EXPANSION * max(
            e.compress_size, 1
        ):
            raise _refuse(
                path,
                f"entry {e.filename!r} expands {e.compress_size} -> {e.file_size} bytes "
                "(a decompression bomb; torch.save does not compress)",
            )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, loaded safely; raises CheckpointError with the reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    _check_archive(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch names the offending global: "Unsupported global: GLOBAL os.system" (older) or
        # "Trying to load unsupported GLOBAL posix.system whose module posix is blocked" (2.13).
        found = re.search(r"GLOBAL\s+([\w.]+)", str(e), re.IGNORECASE)
        if found:
            raise _refuse(
                path,
                f"it carries code (a pickled reference to {found.group(1)}), not plain data; "
                "it was not run",
            ) from None
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable: not a torch file") from None
    except Exception as e:  # truncated, not a torch file, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(
            f"checkpoint {str(path)!r} is unreadable: {type(e).__name__}: {first}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an AnySeg checkpoint (no format={FORMAT!r})")
    version = data.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(
            f"{str(path)!r} has format version {version!r}; this code reads <= {VERSION}"
        )
    return data


def _description(data: Mapping[str, Any], path: Path) -> dict[str, Any]:
    """The checked description of a raw checkpoint: every field a checkpoint must have, of the
    right type and within the limits, before a model is built. CheckpointError names the field."""

    def bad(field: str, what: str) -> CheckpointError:
        return _refuse(path, f"{field} {what}")

    model = data.get("model")
    if not isinstance(model, Mapping):
        raise bad("model", f"must be the architecture's config (a mapping), got {model!r:.60}")
    k = model.get("num_classes")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_CLASSES:
        raise bad("model.num_classes", f"must be an integer 1..{MAX_CLASSES}, got {k!r:.60}")
    mods = model.get("modalities")
    if not isinstance(mods, (list, tuple)) or not mods or not all(m in MODALITIES for m in mods):
        raise bad("model.modalities", f"must be a list of {list(MODALITIES)}, got {mods!r:.60}")
    if not isinstance(model.get("name"), str):
        raise bad("model.name", f"must be a registered model name, got {model.get('name')!r:.60}")
    classes = data.get("classes")
    if not isinstance(classes, (list, tuple)) or len(classes) != k:
        raise bad("classes", f"must be {k} class names, got {classes!r:.60}")
    if not all(isinstance(c, str) for c in classes):
        raise bad("classes", "must be strings")
    palette = data.get("palette")
    ok = isinstance(palette, (list, tuple)) and len(palette) == k
    ok = ok and all(
        isinstance(c, (list, tuple))
        and len(c) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in c)
        for c in palette
    )
    if not ok:
        raise bad("palette", f"must be {k} [r, g, b] triples of 0..255, got {palette!r:.60}")
    reps = data.get("representations")
    if not isinstance(reps, Mapping) or set(mods) - set(reps):
        raise bad("representations", f"must name one for each of {list(mods)}, got {reps!r:.60}")
    try:
        representations = {m: Representation.from_dict(reps[m]) for m in mods}
    except (ValueError, TypeError) as e:
        raise bad("representations", f"are not usable: {e}") from None
    size = data.get("input_size")
    if size is not None:
        ok = isinstance(size, (list, tuple)) and len(size) == 2
        ok = ok and all(
            isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_INPUT_SIDE
            for v in size
        )
        if not ok:
            raise bad(
                "input_size",
                f"must be [height, width] of 1..{MAX_INPUT_SIDE} pixels or null, got {size!r:.60}",
            )
    if not isinstance(data.get("state_dict"), Mapping):
        raise bad("state_dict", "is missing")
    meta = data.get("meta") or {}
    if not isinstance(meta, Mapping):
        raise bad("meta", "must be a mapping")
    return {
        "model": dict(model),
        "classes": tuple(classes),
        "palette": [tuple(c) for c in palette],
        "representations": representations,
        "input_size": tuple(size) if size else None,
        "meta": dict(meta),
    }


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model and its description from ``path`` (model in eval mode on CPU). Every
    problem with the file is one :class:`CheckpointError` naming the file and what is wrong."""
    path = Path(path)
    data = read_checkpoint(path)
    d = _description(data, path)
    cfg = d["model"]
    try:
        model = create_model(cfg.pop("name"), cfg.pop("num_classes"), cfg.pop("modalities"), **cfg)
        model.load_state_dict(data["state_dict"])
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} does not build a model: {first}") from None
    model.eval()
    return Checkpoint(
        model, d["classes"], d["palette"], d["representations"], d["input_size"], d["meta"]
    )
