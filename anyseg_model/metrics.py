"""Confusion matrices, IoU and per-subset tables (docs/method.md section 7).

Two mIoU conventions are reported side by side: ``miou`` averages over classes that occur in the
prediction or the ground truth (NaN IoUs skipped), ``miou_nan0`` sets NaN to 0 and averages over
ALL classes, as the AnySeg reference code does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .classes import IGNORE_INDEX
from .modalities import all_subsets, parse_subset, subset_name


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """(K, K) int64 counts, rows = ground truth, columns = prediction; ignored pixels skipped."""
    pred, target = np.asarray(pred), np.asarray(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
    keep = (target != ignore_index) & (target < num_classes)
    t = target[keep].astype(np.int64)
    p = np.asarray(pred)[keep].astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"prediction holds ids outside 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def iou(conf: np.ndarray) -> np.ndarray:
    """Per-class IoU = TP / (TP + FP + FN); NaN where a class is in neither map."""
    tp = np.diag(conf).astype(np.float64)
    denom = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, tp / np.maximum(denom, 1), np.nan)


def miou(conf: np.ndarray, nan_as_zero: bool = False) -> float:
    """Mean IoU over present classes, or over all classes with NaN counted as 0."""
    v = iou(conf)
    if nan_as_zero:
        return float(np.nan_to_num(v, nan=0.0).mean())
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


class SubsetScores:
    """Confusion matrices accumulated per modality subset; renders the JSON and a table."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)
        self.conf: dict[str, np.ndarray] = {}

    def add(self, subset: str | Iterable[str], pred: np.ndarray, target: np.ndarray) -> None:
        name = subset_name(parse_subset(subset) if isinstance(subset, str) else subset)
        k = len(self.classes)
        self.conf[name] = self.conf.get(name, np.zeros((k, k), np.int64)) + confusion_matrix(
            pred, target, k
        )

    def _ordered(self) -> list[str]:
        rank = {subset_name(s): i for i, s in enumerate(all_subsets())}
        return sorted(self.conf, key=lambda n: rank.get(n, len(rank)))

    def to_dict(self) -> dict:
        """``{"subsets": {name: {miou, miou_nan0, per_class_iou}}, "mean_miou", ...}``, in %."""
        subsets = {}
        for name in self._ordered():
            c = self.conf[name]
            per = iou(c)
            subsets[name] = {
                "miou": _pct(miou(c)),
                "miou_nan0": _pct(miou(c, nan_as_zero=True)),
                "per_class_iou": {cls: _pct(v) for cls, v in zip(self.classes, per, strict=True)},
                "pixels": int(c.sum()),
            }
        mean = [s["miou"] for s in subsets.values() if s["miou"] is not None]
        mean0 = [s["miou_nan0"] for s in subsets.values()]
        return {
            "subsets": subsets,
            "mean_miou": round(float(np.mean(mean)), 2) if mean else None,
            "mean_miou_nan0": round(float(np.mean(mean0)), 2) if mean0 else None,
            "classes": list(self.classes),
        }

    def table(self) -> str:
        """A markdown table: one row per subset, then the mean."""
        d = self.to_dict()
        rows = [[n, s["miou"], s["miou_nan0"]] for n, s in d["subsets"].items()]
        rows.append(["**mean**", d["mean_miou"], d["mean_miou_nan0"]])
        return markdown_table(["subset", "mIoU", "mIoU (NaN=0)"], rows)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A markdown table: first column left-aligned, the rest right-aligned; floats with two
    decimals, None as n/a. Every subset and results table of the project comes from here."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def _pct(v: float) -> float | None:
    return None if not np.isfinite(v) else round(100.0 * float(v), 2)
