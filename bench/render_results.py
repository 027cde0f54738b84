"""Render the RESULTS tables from an experiment folder written by bench/run_results.sh.

    python bench/render_results.py runs/results > runs/results/table.md

Reads ``<dir>/<run>/eval.json`` (SubsetScores.to_dict() of evaluate/train scripts) for the runs
listed in RUNS (those present), and prints per-subset mIoU tables in the paper's layout
(arXiv 2411.17141, Table 1): one with IoU averaged over the classes that occur (NaN skipped),
one with NaN = 0 over all classes (the reference convention), plus training time per run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from anyseg_model.metrics import markdown_table

# (folder, label) in table order.
RUNS = [
    ("teacher", "PML teacher (all modalities, L_sup)"),
    ("sup", "student: L_sup + dropout"),
    ("sup_seed2", "student: L_sup + dropout (2nd seed)"),
    ("mad", "student: + MAD"),
    ("mad_umd", "student: + MAD + UMD"),
    ("mad_umd_cmd", "student: + MAD + UMD + CMD (AnySeg)"),
    ("ummkd", "student: AnySeg + UMMKD (per-modality norms)"),
]
SHORT = {"rgb": "R", "depth": "D", "event": "E", "lidar": "L"}


def short(subset: str) -> str:
    return "".join(SHORT.get(m, m) for m in subset.split("+"))


def table(runs: list[tuple[str, str, dict]], key: str, mean_key: str) -> str:
    subsets = list(runs[0][2]["subsets"])
    rows = []
    for _, label, d in runs:
        mean = d.get(mean_key)
        vals = [d["subsets"].get(s, {}).get(key) for s in subsets]
        rows.append([label, *vals, "**n/a**" if mean is None else f"**{mean:.2f}**"])
    return markdown_table(["method", *(short(s) for s in subsets), "mean"], rows)


def size_means(d: dict, key: str) -> dict[int, float]:
    by: dict[int, list[float]] = {}
    for s, v in d["subsets"].items():
        if v.get(key) is not None:
            by.setdefault(s.count("+") + 1, []).append(v[key])
    return {k: sum(v) / len(v) for k, v in sorted(by.items())}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else "runs/results")
    runs = []
    for folder, label in RUNS:
        f = root / folder / "eval.json"
        if f.is_file():
            runs.append((folder, label, json.loads(f.read_text())))
    if not runs:
        print(f"no <run>/eval.json under {root}", file=sys.stderr)
        return 1
    print(
        "mIoU (%) per modality subset, "
        "IoU averaged over classes present in prediction or ground truth:\n"
    )
    print(table(runs, "miou", "mean_miou"))
    print(
        "\nmIoU (%) with NaN IoU = 0, averaged over all "
        f"{len(runs[0][2]['classes'])} classes (reference convention):\n"
    )
    print(table(runs, "miou_nan0", "mean_miou_nan0"))
    print("\nMean mIoU by number of modalities given, and training cost:\n")
    rows = []
    for _, label, d in runs:
        sm = size_means(d, "miou")
        cost = [d.get("train_seconds"), d.get("train_images_per_s")]
        rows.append([label, *(sm.get(k) for k in (1, 2, 3, 4)), *cost])
    header = ["method", "1 mod.", "2 mod.", "3 mod.", "4 mod.", "train s", "images/s"]
    print(markdown_table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
