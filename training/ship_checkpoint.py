"""Turn a run's final checkpoint into one fit to commit: no training state, and every path it
stored (its config's data source, the teacher it came from) relative to the repository, so no
machine's absolute paths travel with it.

    python training/ship_checkpoint.py runs/study/t_gated_3407/student.pt \\
        checkpoints/anyseg_tiny_synthetic.pt

The model, classes, palette, representations and input size are kept as they are; the file
still loads with ``torch.load(weights_only=True)`` (it is written by ``save_checkpoint``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from anyseg_model.checkpoint import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def relative_paths(value: Any, root: Path) -> Any:
    """``value`` with every string that names a place under ``root`` made relative to it
    (also inside ``prefix:PATH`` data sources)."""
    if isinstance(value, dict):
        return {k: relative_paths(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [relative_paths(v, root) for v in value]
    if isinstance(value, str):
        prefix, sep, rest = value.rpartition(":") if value.count(":") == 1 else ("", "", value)
        p = Path(rest)
        if p.is_absolute() and p.is_relative_to(root):
            return f"{prefix}{sep}{p.relative_to(root).as_posix()}"
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("source", help="a final checkpoint (student.pt / teacher.pt)")
    p.add_argument("dest", help="where to write it")
    p.add_argument("--root", default=str(ROOT), help="paths under this become relative")
    args = p.parse_args(argv)
    ck = load_checkpoint(args.source)
    root = Path(args.root).resolve()
    meta = relative_paths(ck.meta, root)
    meta["shipped_from"] = relative_paths(str(Path(args.source).resolve()), root)
    save_checkpoint(
        ck.model,
        args.dest,
        classes=ck.classes,
        palette=ck.palette,
        representations=ck.representations,
        input_size=ck.input_size,
        **meta,
    )
    print(f"wrote {args.dest} from {args.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
