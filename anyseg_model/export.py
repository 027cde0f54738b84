"""anyseg-export: a checkpoint -> ONNX graphs for its modality subsets, each self-describing.

    anyseg-export CKPT --out DIR [--subsets all|rgb,rgb+lidar,...] [--size HxW] [--fp16]

An absent modality costs nothing: a graph takes exactly the modalities of a frame set, folded
into one batch through the shared encoder as in torch, and the onnxruntime backend
(:mod:`anyseg_model.backends`) opens a graph's session the first time a subset needs it. With
the shared norms of AnySeg the network treats its inputs alike, so one graph per *number* of
modalities serves every subset of that size (4 graphs for 15 subsets); a model with
per-modality norms gets one graph per subset. Inputs ``x0``, ``x1``, ... are the subset's
modalities in canonical order, ``(1, 3, H, W)`` float32, already encoded by the checkpoint's
representations (preprocessing stays in torch); the output ``logits`` ``(1, K, H/4, W/4)``
float32 is the head's (upsampling and argmax stay outside, as in ``Segmentor``). ``--fp16``
stores weights and computes in half precision (for CUDA / TensorRT), float32 at the boundary.

Each graph's ``metadata_props`` hold ``anyseg`` = JSON: the checkpoint's classes, palette,
representations, model config and SHA-256, the input size, the subsets the graph serves, fp16
and the opset; ``DIR/anyseg_onnx.json`` is the same description with each subset's file. After
writing, each graph is checked against torch with onnxruntime on the CPU for every subset it
serves (``--no-check`` skips it): max |logit difference| <= 1e-4 (fp32).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import Checkpoint, CheckpointError, load_checkpoint
from .modalities import all_subsets, parse_subset, subset_name

FORMAT = "anyseg-onnx"
VERSION = 1
MANIFEST = "anyseg_onnx.json"
OPSET = 18
PARITY_FP32 = 1e-4  # max |logit difference| an fp32 graph may show against torch
PARITY_FP16 = 1e-2  # half precision: relative to the largest logit


class SubsetGraph(nn.Module):
    """The model for one modality subset: encoded inputs in canonical order -> head logits."""

    def __init__(self, model: nn.Module, modalities: Sequence[str], fp16: bool = False) -> None:
        super().__init__()
        self.model = (copy.deepcopy(model).half() if fp16 else model).eval()
        self.modalities = tuple(modalities)
        self.fp16 = fp16

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        xs = [x.half() for x in inputs] if self.fp16 else list(inputs)
        feats = self.model.forward_features(dict(zip(self.modalities, xs, strict=True)))
        return self.model.forward_head(feats.fused).float()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe(ckpt: Checkpoint, source: str | Path, size: tuple[int, int], fp16: bool) -> dict:
    """What every graph of a checkpoint carries (and the manifest repeats)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "checkpoint": Path(source).name,
        "checkpoint_sha256": file_sha256(source),
        "model": ckpt.model.config,
        "classes": list(ckpt.classes),
        "palette": [list(c) for c in ckpt.palette],
        "representations": {m: r.to_dict() for m, r in ckpt.representations.items()},
        "input_size": list(size),
        "output": {"name": "logits", "stride": 4},
        "fp16": fp16,
        "opset": OPSET,
    }


def graph_file(config: dict, subset: Sequence[str]) -> str:
    """The file that serves ``subset``: one per subset size with shared norms, else per subset."""
    if config.get("norm") == "per_modality":
        return f"{subset_name(subset)}.onnx"
    return f"{len(subset)}_modalities.onnx"


def export_subset(
    ckpt: Checkpoint,
    subset: Sequence[str],
    path: str | Path,
    description: dict,
    serves: Sequence[Sequence[str]] = (),
) -> Path:
    """Write the graph of ``subset`` (and of the other ``serves`` subsets it stands for) to
    ``path`` with its metadata; returns the path."""
    import onnx  # the [deploy] extra: only exporting needs it

    h, w = description["input_size"]
    graph = SubsetGraph(ckpt.model, subset, description["fp16"]).eval()
    inputs = tuple(torch.zeros(1, 3, h, w) for _ in subset)
    path = Path(path)
    with warnings.catch_warnings():  # the tracer's notes on shapes it fixes: the size is fixed
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            inputs,
            str(path),
            input_names=[f"x{i}" for i in range(len(subset))],
            output_names=["logits"],
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    names = sorted({subset_name(s) for s in (subset, *serves)})
    entry.key, entry.value = "anyseg", json.dumps({**description, "subsets": names})
    onnx.save(proto, str(path))
    return path


def check_subset(
    ckpt: Checkpoint, subset: Sequence[str], path: str | Path, size: Sequence[int], fp16: bool
) -> float:
    """Max |logit difference| of the graph (onnxruntime, CPU) against torch on random inputs;
    raises when it exceeds the parity bound."""
    import onnxruntime as ort

    h, w = size
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, 3, h, w, generator=g) for _ in subset]
    with torch.inference_mode():
        want = SubsetGraph(ckpt.model, subset).eval()(*inputs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {f"x{i}": x.numpy() for i, x in enumerate(inputs)})[0]
    diff = float(abs(got - want).max())
    bound = PARITY_FP16 * float(abs(want).max()) if fp16 else PARITY_FP32
    if not diff <= bound:
        raise RuntimeError(
            f"{Path(path).name}: onnxruntime differs from torch by {diff:.3g} (bound {bound:.3g})"
        )
    return diff


def export(
    checkpoint: str | Path,
    out: str | Path,
    subsets: Sequence[Sequence[str]] | None = None,
    size: tuple[int, int] | None = None,
    fp16: bool = False,
    check: bool = True,
    log: Any = print,
) -> Path:
    """Export ``checkpoint``'s graphs (default: every subset of its modalities) into ``out``;
    returns the manifest's path. ``size`` (H, W) defaults to the checkpoint's input_size."""
    ckpt = load_checkpoint(checkpoint)
    size = tuple(size or ckpt.input_size or ())
    if len(size) != 2:
        raise ValueError(
            f"checkpoint {str(checkpoint)!r} has no input_size (it runs at the camera's size): "
            "give --size HxW, the size the graphs will take"
        )
    subsets = [tuple(s) for s in (subsets or all_subsets(ckpt.modalities))]
    foreign = sorted({m for s in subsets for m in s} - set(ckpt.modalities))
    if foreign:
        raise ValueError(
            f"subsets name {foreign}, which checkpoint {str(checkpoint)!r} does not take "
            f"(it takes {list(ckpt.modalities)})"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    description = describe(ckpt, checkpoint, size, fp16)
    files: dict[str, list[tuple[str, ...]]] = {}  # file -> the subsets it serves
    for subset in subsets:
        files.setdefault(graph_file(ckpt.model.config, subset), []).append(subset)
    graphs = {}
    for i, (name, served) in enumerate(files.items(), 1):
        t0 = time.monotonic()
        path = export_subset(ckpt, served[0], out / name, description, served)
        diff = [check_subset(ckpt, s, path, size, fp16) for s in served] if check else []
        note = f", max |logit diff| {max(diff):.1e} over {len(served)} subsets" if diff else ""
        log(f"[{i}/{len(files)}] {name} ({time.monotonic() - t0:.1f} s{note})")
        graphs.update({subset_name(s): name for s in served})
    manifest = out / MANIFEST
    manifest.write_text(json.dumps({**description, "graphs": graphs}, indent=1) + "\n")
    return manifest


def read_manifest(directory: str | Path) -> dict:
    """The description of an export directory; ValueError naming what is wrong."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{str(directory)!r} is not an anyseg-export directory ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("version", 0) > VERSION:
        raise ValueError(f"{str(path)!r} is not a readable {FORMAT} manifest")
    return manifest


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: want HxW, e.g. 480x640") from None
    if not (16 <= h <= 8192 and 16 <= w <= 8192):
        raise argparse.ArgumentTypeError(f"size {text!r}: H and W must be in 16..8192")
    return h, w


def _parse_subsets(text: str) -> list[tuple[str, ...]] | None:
    if text == "all":
        return None
    try:
        return [parse_subset(s) for s in text.split(",")]
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def main(argv: list[str] | None = None) -> int:
    """Console script ``anyseg-export``; exit 2 with one line on bad input."""
    p = _Parser(
        prog="anyseg-export",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="an AnySeg checkpoint (.pt)")
    p.add_argument("--out", required=True, help="directory for the graphs and the manifest")
    p.add_argument(
        "--subsets",
        type=_parse_subsets,
        default=None,
        help="'all' (default: every subset of the checkpoint's modalities) or a comma list "
        "such as rgb,rgb+lidar",
    )
    p.add_argument(
        "--size", type=_parse_size, default=None, help="HxW input (default: the checkpoint's)"
    )
    p.add_argument("--fp16", action="store_true", help="half-precision graphs (GPU)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    args = p.parse_args(argv)
    try:
        manifest = export(
            args.checkpoint, args.out, args.subsets, args.size, args.fp16, not args.no_check
        )
    except (CheckpointError, ValueError, RuntimeError, OSError) as e:
        print(f"anyseg-export: error: {e}", file=sys.stderr)
        return 2
    except ImportError as e:
        print(
            f"anyseg-export: error: {e.name} is missing; install the extra: "
            "pip install 'anyseg_ros[deploy]'",
            file=sys.stderr,
        )
        return 2
    print(f"wrote {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
