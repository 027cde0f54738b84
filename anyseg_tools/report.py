"""report.json, report.md and PNG plots of an evaluation run (offline or live).

Two time lines per sensor, kept apart: the *schedule* (what the drop windows silenced, from the
bag's start) and the *outages* the node noticed (from going stale until alive again: they start
a timeout after the drop and end with the first message back). The mIoU-over-time plot shades
the schedule and marks what the node noticed separately.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from anyseg_model.metrics import markdown_table
from anyseg_model.modalities import MODALITIES, subset_name
from anyseg_ros.core.decode import unlabelled

from .scoring import FrameResult


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    v = np.asarray([x for x in values if x is not None], float)
    if not v.size:
        return {"p50": None, "p95": None, "max": None}
    return {
        "p50": round(float(np.percentile(v, 50)), 2),
        "p95": round(float(np.percentile(v, 95)), 2),
        "max": round(float(v.max()), 2),
    }


def schedule_spans(windows: Sequence[Any], end_s: float) -> dict[str, list[list[float]]]:
    """Drop windows (``DropWindow``: modality, start_s, end_s) -> per sensor ``[start, end]``
    spans on the bag's time line, an open end clipped to ``end_s``."""
    spans: dict[str, list[list[float]]] = {}
    for w in sorted(windows, key=lambda w: (w.modality, w.start_s)):
        end = min(w.end_s, end_s)
        if end > w.start_s:
            spans.setdefault(w.modality, []).append([round(w.start_s, 3), round(end, 3)])
    return spans


def outage_timeline(
    events: Sequence[tuple[float, str, str]], end_s: float
) -> dict[str, list[list[float]]]:
    """Health events ``(t_s, modality, state)`` -> per sensor the ``[start, end]`` spans it was out.

    A sensor is out from going stale until it is alive again. The moment before a sensor's first
    message (offline) is start-up, not an outage, unless it never comes at all. Events after
    ``end_s`` (everything goes stale once a recording ends) are not part of the run.
    """
    spans: dict[str, list[list[float]]] = {}
    down: dict[str, float] = {}
    seen_alive: set[str] = set()
    for t, m, state in sorted(e for e in events if e[0] <= end_s):
        if state == "alive":
            seen_alive.add(m)
            if m in down:
                spans.setdefault(m, []).append([round(down.pop(m), 3), round(t, 3)])
        elif state == "stale" and m not in down:
            down[m] = t
    for m, t in down.items():
        spans.setdefault(m, []).append([round(t, 3), round(end_s, 3)])
    for m in {m for _, m, _ in events} - seen_alive - set(spans):
        spans[m] = [[0.0, round(end_s, 3)]]
    return dict(
        sorted(spans.items(), key=lambda kv: MODALITIES.index(kv[0]) if kv[0] in MODALITIES else 99)
    )


def build_report(
    frames: Sequence[FrameResult],
    scores_dict: Mapping[str, Any],
    per_frame_miou: Mapping[int, float],
    meta: Mapping[str, Any],
    outages: Mapping[str, list[list[float]]],
    dropped_frames: int,
) -> dict[str, Any]:
    """The report.json structure: mIoU per subset actually used, frames per subset, latency."""
    counts: dict[str, int] = {}
    for f in frames:
        counts[subset_name(f.modalities)] = counts.get(subset_name(f.modalities), 0) + 1
    subsets = {k: dict(v, frames=counts.get(k, 0)) for k, v in scores_dict["subsets"].items()}
    return {
        **meta,
        "frames": len(frames),
        "frames_scored": len(per_frame_miou),
        "frames_dropped": dropped_frames,
        "frames_per_subset": counts,
        # Share of the frames each sensor contributed to (e.g. LiDAR coverage).
        "modality_share": {
            m: round(sum(m in f.modalities for f in frames) / len(frames), 4) if frames else 0.0
            for m in MODALITIES
        },
        "subsets": subsets,
        "mean_miou": scores_dict["mean_miou"],
        "mean_miou_nan0": scores_dict["mean_miou_nan0"],
        "latency_ms": percentiles([f.latency_ms for f in frames]),
        "processing_ms": percentiles([f.processing_ms for f in frames]),
        "outages": outages,
        "classes": scores_dict["classes"],
    }


def write_report(
    out: Path,
    report: Mapping[str, Any],
    frames: Sequence[FrameResult],
    per_frame_miou: Mapping[int, float],
    palette: Sequence[Sequence[int]],
) -> list[Path]:
    """Write report.json, report.md, frames.csv and the plots into ``out``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown(report))
    with (out / "frames.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stamp_ns", "anchor", "modalities", "latency_ms", "processing_ms", "miou"])
        for fr in frames:
            w.writerow(
                [
                    fr.stamp_ns,
                    fr.anchor,
                    subset_name(fr.modalities),
                    _cell(fr.latency_ms),
                    _cell(fr.processing_ms),
                    _cell(per_frame_miou.get(fr.stamp_ns)),
                ]
            )
    written = [out / "report.json", out / "report.md", out / "frames.csv"]
    written += plots(out, report, frames, per_frame_miou, palette)
    for f in frames:
        if f.cloud is not None:
            written.append(write_ply(out / "clouds" / f"{f.stamp_ns}.ply", *f.cloud, palette))
    return written


def write_ply(
    path: Path, points: np.ndarray, labels: np.ndarray, palette: Sequence[Sequence[int]]
) -> Path:
    """A labelled point cloud as ASCII PLY (x, y, z, intensity, label, class colour), readable by
    open3d, CloudCompare and MeshLab. Points off the camera image have label 255 (65535 with
    uint16 labels), grey."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pts = np.asarray(points, np.float32)
    labels = np.asarray(labels)
    intensity = pts[:, 3] if pts.shape[1] > 3 else np.zeros(len(pts), np.float32)
    size = max(len(palette), unlabelled(labels.dtype) + 1)
    colours = np.full((size, 3), 128, np.uint8)
    colours[: min(len(palette), size)] = np.asarray(palette, np.uint8)[:size]
    rgb = colours[labels]
    label_type = "uchar" if labels.dtype == np.uint8 else "ushort"
    header = [
        "ply",
        "format ascii 1.0",
        f"element vertex {len(pts)}",
        "property float x",
        "property float y",
        "property float z",
        "property float intensity",
        f"property {label_type} label",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        "end_header",
    ]
    rows = np.column_stack([pts[:, :3], intensity, labels, rgb]).astype(object)
    with path.open("w") as f:
        f.write("\n".join(header) + "\n")
        np.savetxt(f, rows, fmt=["%.4f", "%.4f", "%.4f", "%.4f", "%d", "%d", "%d", "%d"])
    return path


def markdown(report: Mapping[str, Any]) -> str:
    lat, proc = report["latency_ms"], report["processing_ms"]
    rows = [[n, s["frames"], s["miou"], s["miou_nan0"]] for n, s in report["subsets"].items()]
    rows.append(["**mean over subsets**", "", report["mean_miou"], report["mean_miou_nan0"]])
    frames = report["frames"]
    lines = [
        f"# Evaluation of {report.get('bag', '?')} ({report.get('mode', '?')})",
        "",
        f"checkpoint: `{report.get('checkpoint', '?')}`; drops: {report.get('drops') or 'none'}",
        "",
        f"frames: {frames} ({report['frames_scored']} scored, {report['frames_dropped']} dropped)",
        "",
        markdown_table(["subset", "frames", "mIoU", "mIoU (NaN=0)"], rows),
    ]
    lines += [
        "",
        f"latency ms (stamp -> labels): p50 {_f(lat['p50'])}, p95 {_f(lat['p95'])}, "
        f"max {_f(lat['max'])}",
        f"model ms: p50 {_f(proc['p50'])}, p95 {_f(proc['p95'])}, max {_f(proc['max'])}",
        "",
    ]
    for m, spans in report.get("schedule", {}).items():
        lines.append(f"- {m} dropped: " + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans))
    for m, spans in report["outages"].items():
        lines.append(
            f"- {m} out (as the node saw it): " + ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans)
        )
    return "\n".join(lines) + "\n"


def _cell(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def draw_timeline(ax_miou: Any, ax_sensors: Any, report: Mapping[str, Any]) -> None:
    """Shade the schedule (what was dropped) on both axes and mark separately, per sensor row,
    when the node noticed each outage (a red bar from going stale until alive again). Artists
    carry ``gid`` ``schedule:<m>`` / ``noticed:<m>``. Schedule and outages are on the bag's time
    line, frames on the first frame's: near enough to read."""
    for m, spans in report.get("schedule", {}).items():
        for a, b in spans:
            for ax in (ax_miou, ax_sensors):
                ax.axvspan(a, b, color="0.85", zorder=0, gid=f"schedule:{m}")
            ax_sensors.text(
                (a + b) / 2, MODALITIES.index(m) + 0.3, f"{m} dropped", ha="center", fontsize=8
            )
    for m, spans in report.get("outages", {}).items():
        row = MODALITIES.index(m) if m in MODALITIES else len(MODALITIES)
        for a, b in spans:
            ax_sensors.hlines(row - 0.3, a, b, colors="tab:red", lw=3, gid=f"noticed:{m}")
            ax_miou.axvline(a, color="tab:red", ls=":", lw=1, gid=f"noticed:{m}")
    handles = []
    if report.get("schedule"):
        import matplotlib.patches as mpatches

        handles.append(mpatches.Patch(color="0.85", label="dropped (schedule)"))
    if report.get("outages"):
        import matplotlib.lines as mlines

        handles.append(
            mlines.Line2D([], [], color="tab:red", lw=3, label="out, as the node saw it")
        )
    if handles:
        ax_sensors.legend(handles=handles, loc="upper right", fontsize=7)


def plots(
    out: Path,
    report: Mapping[str, Any],
    frames: Sequence[FrameResult],
    per_frame_miou: Mapping[int, float],
    palette: Sequence[Sequence[int]],
) -> list[Path]:
    """mIoU and active sensors over time, latency histogram, a few label overlays."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if frames:
        t0 = frames[0].stamp_ns
        t = [(f.stamp_ns - t0) * 1e-9 for f in frames]
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, height_ratios=(2, 1))
        scored = [
            (ti, per_frame_miou[f.stamp_ns])
            for ti, f in zip(t, frames, strict=True)
            if f.stamp_ns in per_frame_miou
        ]
        ax1.plot([a for a, _ in scored], [b for _, b in scored], ".-", ms=3)
        ax1.set_ylabel("frame mIoU (%)")
        ax1.set_title("mIoU and active sensors over time")
        for row, m in enumerate(MODALITIES):
            on = [ti for ti, f in zip(t, frames, strict=True) if m in f.modalities]
            ax2.scatter(on, [row] * len(on), s=4, marker="|")
        ax2.set_yticks(range(len(MODALITIES)), MODALITIES)
        draw_timeline(ax1, ax2, report)
        ax2.set_xlabel("time (s)")
        fig.tight_layout()
        fig.savefig(out / "miou_over_time.png", dpi=100)
        plt.close(fig)
        written.append(out / "miou_over_time.png")
    lat = [f.latency_ms for f in frames if f.latency_ms is not None] or [
        f.processing_ms for f in frames if f.processing_ms
    ]
    if lat:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(lat, bins=30)
        ax.set_xlabel(
            "latency (ms)" if frames and frames[0].latency_ms is not None else "model time (ms)"
        )
        ax.set_ylabel("frames")
        fig.tight_layout()
        fig.savefig(out / "latency_hist.png", dpi=100)
        plt.close(fig)
        written.append(out / "latency_hist.png")
    colours = np.asarray(palette, np.uint8)
    for i, f in enumerate(x for x in frames if x.image is not None and x.labels is not None):
        overlay = (0.5 * f.image + 0.5 * colours[np.minimum(f.labels, len(colours) - 1)]).astype(
            np.uint8
        )
        path = out / f"overlay_{i}.png"
        plt.imsave(path, overlay)
        written.append(path)
    return written
