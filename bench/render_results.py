"""Render the study's tables from a folder written by bench/run_study.py (no number by hand).

    python bench/render_results.py runs/study > runs/study/tables.md

Reads ``<dir>/teacher/eval.json`` and ``<dir>/<row>_<seed>/eval.json`` (SubsetScores.to_dict()
plus training time) and ``cpu.json``. Prints, in markdown:
1. the summary per row, mean +- sample std over seeds: the 15-subset mean mIoU, the full set,
   the mean over the single modalities, RoadLine IoU on the full set and with RGB alone;
2. the goal check (15-subset mean >= teacher + 10 with the full set within 2 of the teacher's):
   which rows reach it, else the closest row and by how much it misses;
3. per-subset mIoU (mean over seeds), in the paper's layout (arXiv 2411.17141, Table 1);
4. the same summary with the reference convention (NaN IoU = 0 over all classes);
5. the CPU time of the study;
6. with ``--shares A.json B.json ...`` (``bench/gradient_shares.py shares --json``), the
   gradient shares of the loss terms, one column per file and measurement;
7. with ``--trajectory A.json B.json ...`` (``bench/gradient_shares.py trajectory --json``), the
   early gradient norms of each file side by side;
8. with ``--demo BEFORE.json AFTER.json`` (two ``runs/demo/report.json`` of ``make demo``), the
   per-subset mIoU of the two runs side by side.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

from anyseg_model.metrics import markdown_table

SHORT = {"rgb": "R", "depth": "D", "event": "E", "lidar": "L"}
FULL = "rgb+depth+event+lidar"
SINGLES = ("rgb", "depth", "event", "lidar")
CLASS = "RoadLine"  # painted: only RGB sees it in the synthetic world
LABELS = {
    "sup": "L_sup + dropout",
    "mad": "+ MAD",
    "mad_umd": "+ MAD + UMD",
    "mad_umd_cmd": "+ MAD + UMD + CMD (AnySeg)",
    "gated": "AnySeg + gated fusion",
    "ohem_ps": "AnySeg + per-sample OHEM",
    "per_size": "AnySeg + per-size head BN",
}
INIT = {"s": "scratch", "t": "teacher"}
ORDER = ["sup", "mad", "mad_umd", "mad_umd_cmd", "gated", "ohem_ps", "per_size"]
GOAL_MEAN, GOAL_FULL = 10.0, 2.0


def short(subset: str) -> str:
    return "".join(SHORT.get(m, m) for m in subset.split("+"))


def metrics(d: dict, key: str = "miou") -> dict[str, float | None]:
    """The figures of one eval.json: mean, full set, single-modality mean, RoadLine IoUs."""
    subs = d["subsets"]
    singles = [subs[m][key] for m in SINGLES if m in subs and subs[m][key] is not None]
    return {
        "mean": d["mean_miou" if key == "miou" else "mean_miou_nan0"],
        "full": subs[FULL][key],
        "single": sum(singles) / len(singles) if singles else None,
        "cls_full": subs[FULL]["per_class_iou"].get(CLASS),
        "cls_rgb": subs["rgb"]["per_class_iou"].get(CLASS),
    }


def load(root: Path) -> tuple[dict, dict[tuple[str, str], list[tuple[int, dict, dict]]]]:
    """The teacher's eval.json and {(init, row): [(seed, eval.json, cpu.json)]}."""
    teacher = json.loads((root / "teacher" / "eval.json").read_text())
    rows: dict[tuple[str, str], list] = {}
    for f in sorted(root.glob("*_*/eval.json")):
        m = re.fullmatch(r"([st])_(.+)_(\d+)", f.parent.name)
        if not m:
            continue
        cpu = f.parent / "cpu.json"
        rows.setdefault((m.group(1), m.group(2)), []).append(
            (
                int(m.group(3)),
                json.loads(f.read_text()),
                json.loads(cpu.read_text()) if cpu.is_file() else {},
            )
        )
    order = {r: i for i, r in enumerate(ORDER)}
    return teacher, dict(sorted(rows.items(), key=lambda kv: (order.get(kv[0][1], 99), kv[0][0])))


def mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    v = [x for x in values if x is not None]
    if not v:
        return None, None
    return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def pm(values: list[float | None]) -> str:
    m, s = mean_std(values)
    return "n/a" if m is None else f"{m:.2f} ± {s:.2f}"


def label(init: str, row: str) -> str:
    return f"{LABELS.get(row, row)}, from {INIT[init]}"


def summary(teacher: dict, rows: dict, key: str) -> str:
    t = metrics(teacher, key)
    out = [["PML teacher (all modalities, L_sup)", "1", *(_f(t[k]) for k in _KEYS)]]
    for (init, row), runs in rows.items():
        ms = [metrics(d, key) for _, d, _ in runs]
        out.append([label(init, row), str(len(runs)), *(pm([m[k] for m in ms]) for k in _KEYS)])
    header = [
        "student",
        "seeds",
        "15-subset mean",
        "full set",
        "single-modality mean",
        f"{CLASS} IoU, full set",
        f"{CLASS} IoU, RGB alone",
    ]
    return markdown_table(header, out)


_KEYS = ("mean", "full", "single", "cls_full", "cls_rgb")


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def goal(teacher: dict, rows: dict) -> str:
    t = metrics(teacher)
    need_mean, need_full = t["mean"] + GOAL_MEAN, t["full"] - GOAL_FULL
    lines = [
        f"Goal: 15-subset mean >= {need_mean:.2f} (teacher {t['mean']:.2f} + {GOAL_MEAN:g}) and "
        f"full set >= {need_full:.2f} (teacher {t['full']:.2f} - {GOAL_FULL:g}), on the mean over "
        "seeds."
    ]
    scored = []
    for (init, row), runs in rows.items():
        m = mean_std([metrics(d)["mean"] for _, d, _ in runs])[0]
        f = mean_std([metrics(d)["full"] for _, d, _ in runs])[0]
        scored.append((min(m - need_mean, f - need_full), label(init, row), m, f))
    reached = [s for s in scored if s[0] >= 0]
    if reached:
        lines.append(
            "Reached by: " + "; ".join(f"{n} ({m:.2f}, {f:.2f})" for _, n, m, f in reached)
        )
    else:
        gap, name, m, f = max(scored)
        lines.append(
            f"No row reaches it. Closest (smallest worst shortfall): {name}, mean {m:.2f} "
            f"({m - need_mean:+.2f} against the goal), full set {f:.2f} ({f - need_full:+.2f})."
        )
    # What the single modalities allow: every multi-modality subset at the teacher's full-set
    # score, the singles as the best row has them.
    best = max(scored, key=lambda s: s[2])
    runs = rows[next(k for k in rows if label(*k) == best[1])]
    singles = mean_std([metrics(d)["single"] for _, d, _ in runs])[0]
    n_sub = len(teacher["subsets"])
    cap = (len(SINGLES) * singles + (n_sub - len(SINGLES)) * t["full"]) / n_sub
    lines.append(
        f"Ceiling from the single modalities: with the {len(SINGLES)} single-modality subsets "
        f"as {best[1]} has them (mean {singles:.2f}) and all {n_sub - len(SINGLES)} others at "
        f"the teacher's full-set score ({t['full']:.2f}), the 15-subset mean would be "
        f"{cap:.2f}, {cap - need_mean:+.2f} against the goal."
    )
    best_mean = max(scored, key=lambda s: s[2])
    best_full = max(scored, key=lambda s: s[3])
    lines.append(
        f"Best 15-subset mean: {best_mean[1]} ({best_mean[2]:.2f}, {best_mean[2] - t['mean']:+.2f} "
        f"on the teacher); best full set: {best_full[1]} ({best_full[3]:.2f}, "
        f"{best_full[3] - t['full']:+.2f} on the teacher)."
    )
    return "\n\n".join(lines)


def per_subset(teacher: dict, rows: dict) -> str:
    subsets = list(teacher["subsets"])
    out = [
        [
            "PML teacher",
            *(teacher["subsets"][s]["miou"] for s in subsets),
            f"**{teacher['mean_miou']:.2f}**",
        ]
    ]
    for (init, row), runs in rows.items():
        vals = [mean_std([d["subsets"][s]["miou"] for _, d, _ in runs])[0] for s in subsets]
        mean = mean_std([d["mean_miou"] for _, d, _ in runs])[0]
        out.append([label(init, row), *vals, f"**{mean:.2f}**"])
    return markdown_table(["model", *(short(s) for s in subsets), "mean"], out)


def cpu(root: Path, rows: dict) -> str:
    t = root / "teacher" / "cpu.json"
    teacher_cpu = json.loads(t.read_text())["cpu_s"] if t.is_file() else 0.0
    per = [c["cpu_s"] for runs in rows.values() for _, _, c in runs if "cpu_s" in c]
    total = teacher_cpu + sum(per)
    return (
        f"CPU time (user + system, 1 thread per run): teacher {teacher_cpu / 60:.1f} min, "
        f"{len(per)} student runs {sum(per) / 60:.1f} min (median {statistics.median(per) / 60:.1f}"
        f" min per run), {total / 60:.1f} min in all."
        if per
        else "CPU time: not recorded."
    )


def shares(files: list[Path]) -> str:
    """Gradient norm of each weighted term / L_sup's, per file (student init) and step."""
    cols, data, weights = [], [], {}
    for f in files:
        d = json.loads(f.read_text())
        weights.update(d.get("weights", {}))
        init = next(
            (o.split("=", 1)[1] for o in d["config"]["overrides"] if o.startswith("student.init=")),
            f.stem,
        )
        for key in sorted(k for k in d if k.startswith("measure_at_step_")):
            cols.append(f"{init}, step {key.rsplit('_', 1)[1]}")
            data.append(d[key])
    terms = list(dict.fromkeys(t for m in data for t in m))
    rows = [
        [
            f"{t} x{weights[t]:g}" if t in weights else t,
            *(m.get(t, {}).get("grad_vs_sup") for m in data),
        ]
        for t in terms
    ]
    return markdown_table(["term (weight x term)", *cols], rows)


def demo(before: Path, after: Path) -> str:
    """Per-subset mIoU (frames) of two ``make demo`` reports, in the order the node used them."""
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    names = list(dict.fromkeys([*a["subsets"], *b["subsets"]]))
    rows = []
    for n in names:
        x, y = a["subsets"].get(n, {}), b["subsets"].get(n, {})
        mx, my = x.get("miou"), y.get("miou")
        diff = f"{my - mx:+.2f}" if mx is not None and my is not None else "n/a"
        rows.append([n, x.get("frames"), mx, y.get("frames"), my, diff])
    rows.append(
        [
            "**mean over subsets**",
            a["frames"],
            a["mean_miou"],
            b["frames"],
            b["mean_miou"],
            f"{b['mean_miou'] - a['mean_miou']:+.2f}",
        ]
    )
    header = ["subset used", "frames before", "mIoU before", "frames after", "mIoU after", "change"]
    return markdown_table(header, rows)


def trajectories(files: list[Path]) -> str:
    """Global gradient norm at the recorded steps, one column per trajectory file."""
    data = [json.loads(f.read_text()) for f in files]
    cols = [
        "first patch-embedding bias 0 (old)" if d.get("zero_first_bias") else "bias N(0, 0.02)"
        for d in data
    ]
    steps = list(dict.fromkeys(k for d in data for k in d["grad_norm_at_step"]))
    rows = [[f"step {k}", *(d["grad_norm_at_step"].get(k) for d in data)] for k in steps]
    rows.append(["step 1 / last step", *(d["step1_over_last"] for d in data)])
    return markdown_table(["global gradient norm, clipping off", *cols], rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--trajectory" in argv:
        print(trajectories([Path(f) for f in argv[argv.index("--trajectory") + 1 :]]))
        return 0
    if "--demo" in argv:
        i = argv.index("--demo")
        print(demo(Path(argv[i + 1]), Path(argv[i + 2])))
        return 0
    if "--shares" in argv:
        i = argv.index("--shares")
        print(shares([Path(f) for f in argv[i + 1 :]]))
        argv = argv[:i]
        if not argv:
            return 0
        print()
    root = Path(argv[0] if argv else "runs/study")
    if not (root / "teacher" / "eval.json").is_file():
        print(f"no teacher/eval.json under {root}", file=sys.stderr)
        return 1
    teacher, rows = load(root)
    print("Summary, mIoU % (IoU averaged over the classes that occur), mean ± std over seeds:\n")
    print(summary(teacher, rows, "miou"))
    print("\n" + goal(teacher, rows))
    print("\nmIoU % per modality subset (mean over seeds):\n")
    print(per_subset(teacher, rows))
    print(
        "\nThe same summary with the reference convention (NaN IoU = 0, averaged over all "
        f"{len(teacher['classes'])} classes):\n"
    )
    print(summary(teacher, rows, "miou_nan0"))
    print("\n" + cpu(root, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
