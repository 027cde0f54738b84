"""The study of bench/RESULTS.md: one PML teacher, then students on the synthetic world.

    python bench/run_study.py --out runs/study3                 # everything, 2 runs at a time
    python bench/run_study.py --out runs/study3 --list          # the runs and their commands
    python bench/run_study.py --out runs/study3 --only 't_*'    # a subset (shell-style pattern)
    python bench/render_results.py runs/study3 > runs/study3/tables.md
    python bench/run_study.py --out runs/study --student-epochs 5   # the longer variant

Rows (each with ``--seeds``, default 3407 3408 3409): students from scratch (``s_*``) and from
the teacher's weights (``t_*``) with L_sup + anymodal dropout, + MAD, + MAD + UMD and
+ MAD + UMD + CMD; then, from the teacher with the full recipe, presence-gated fusion
(``t_gated``), per-sample OHEM (``t_ohem_ps``) and per-subset-size head BatchNorm
(``t_per_size``); and the full recipe with gated fusion from scratch (``s_gated``). Everything
else comes from ``--config`` (default ``training/configs/synthetic.yaml``); ``--student-epochs``
(default 3: the whole study in about 90 CPU-minutes, issue 13) and ``--teacher-epochs`` set the
budget.

The code is snapshot once into ``<out>/code`` (anyseg_model, anyseg_sim, training, bench, and
the git commit in ``COMMIT``) and every run imports it from there (PYTHONPATH), so a changing
working tree never mixes code versions inside one study. The synthetic frames are generated once
into ``<out>/data`` and pinned. A run whose final checkpoint and eval.json exist is skipped; an
interrupted run continues with ``--resume``. Runs are started with ``nice -n 5`` and 1 torch
thread; each run's CPU seconds (user + system, from the kernel) go to ``<out>/<run>/cpu.json``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("anyseg_model", "anyseg_sim", "training", "bench")
SEEDS = (3407, 3408, 3409)
NO_DISTILL = ["loss.mad=0", "loss.umd=0", "loss.cmd=0"]
# (row, overrides, label). Students of every row distil from the one teacher.
LOSS_ROWS = [
    ("sup", NO_DISTILL, "L_sup + dropout"),
    ("mad", ["loss.umd=0", "loss.cmd=0"], "+ MAD"),
    ("mad_umd", ["loss.cmd=0"], "+ MAD + UMD"),
    ("mad_umd_cmd", [], "+ MAD + UMD + CMD (AnySeg)"),
]
OPTION_ROWS = [
    ("t_gated", "teacher", ["model.fusion=gated"], "AnySeg + gated fusion"),
    ("t_ohem_ps", "teacher", ["loss.ohem_per_sample=true"], "AnySeg + per-sample OHEM"),
    ("t_per_size", "teacher", ["model.head_norm=per_size"], "AnySeg + per-size head BN"),
    ("s_gated", "scratch", ["model.fusion=gated"], "AnySeg + gated fusion"),
]


@dataclass
class Run:
    name: str  # folder under <out>
    script: str  # train_teacher.py | distill.py
    final: str  # teacher.pt | student.pt
    args: list[str] = field(default_factory=list)


def plan(out: Path, seeds, teacher_epochs: int, student_epochs: int) -> list[Run]:
    """Every run of the study, the teacher first."""
    runs = [Run("teacher", "train_teacher.py", "teacher.pt", [f"optim.epochs={teacher_epochs}"])]
    teacher = str(out / "teacher" / "teacher.pt")
    rows = [
        (f"{p}_{r}", init, o)
        for p, init in (("s", "scratch"), ("t", "teacher"))
        for r, o, _ in LOSS_ROWS
    ]
    rows += [(r, init, o) for r, init, o, _ in OPTION_ROWS]
    for row, init, overrides in rows:
        for seed in seeds:
            args = ["--teacher", teacher, f"student.init={init}", f"optim.epochs={student_epochs}"]
            runs.append(
                Run(
                    f"{row}_{seed}",
                    "distill.py",
                    "student.pt",
                    [*args, *overrides, f"run.seed={seed}"],
                )
            )
    return runs


def snapshot(out: Path) -> Path:
    """Copy the packages once; later invocations reuse the copy (and say which commit it is)."""
    code = out / "code"
    if not (code / "COMMIT").is_file():
        tmp = out / "code.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        for p in PACKAGES:
            shutil.copytree(ROOT / p, tmp / p, ignore=shutil.ignore_patterns("__pycache__"))
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", *PACKAGES],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
        (tmp / "COMMIT").write_text(
            commit + (" (with uncommitted changes)" if dirty else "") + "\n"
        )
        tmp.rename(code)
    return code


def command(run: Run, code: Path, out: Path, config: str) -> list[str]:
    data = f"synthetic:{out / 'data'}"
    if not Path(config).is_absolute():  # a repository config: the snapshot's copy
        config = str(code / config)
    return [
        "nice",
        "-n",
        "5",
        sys.executable,
        str(code / "training" / run.script),
        "--config",
        config,
        "--data",
        data,
        "--out",
        str(out / run.name),
        "--resume",
        *run.args,
        "run.threads=1",
    ]


def execute(run: Run, code: Path, out: Path, config: str) -> str:
    folder = out / run.name
    if (folder / run.final).is_file() and (folder / "eval.json").is_file():
        return f"{run.name}: done already"
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1")
    t0 = time.time()
    with open(out / f"{run.name}.log", "w") as log:
        proc = subprocess.Popen(
            command(run, code, out, config),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    wall = time.time() - t0
    cpu = usage.ru_utime + usage.ru_stime
    if rc == 0:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cpu.json").write_text(
            json.dumps({"cpu_s": round(cpu, 1), "wall_s": round(wall, 1)})
        )
    tail = (out / f"{run.name}.log").read_text().strip().splitlines()[-1:] or [""]
    return (
        f"{run.name}: rc {rc}, {wall / 60:.1f} min wall, {cpu / 60:.1f} min CPU | {tail[0][:120]}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", default="runs/study3")
    p.add_argument("--config", default="training/configs/synthetic.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--student-epochs", type=int, default=3)
    p.add_argument("--jobs", type=int, default=2, help="runs at a time (1 thread each)")
    p.add_argument("--only", nargs="+", help="run names or shell patterns (teacher always first)")
    p.add_argument("--list", action="store_true", help="print the runs and commands, run nothing")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs = plan(out, args.seeds, args.teacher_epochs, args.student_epochs)
    if args.only:
        runs = [
            r
            for r in runs
            if r.name == "teacher" or any(fnmatch.fnmatch(r.name, o) for o in args.only)
        ]
    config = args.config
    if args.list:
        for r in runs:
            print(r.name, " ".join(command(r, out / "code", out, config)))
        return 0
    code = snapshot(out)
    print(f"code snapshot {code} at {(code / 'COMMIT').read_text().strip()}", flush=True)
    t0 = time.time()
    print(f"[{time.strftime('%H:%M:%S')}] {execute(runs[0], code, out, config)}", flush=True)
    if not (out / "teacher" / "teacher.pt").is_file():
        print("the teacher did not finish; see teacher.log", file=sys.stderr)
        return 1
    failed = 0
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        jobs = [pool.submit(execute, r, code, out, config) for r in runs[1:]]
        for job in as_completed(jobs):
            line = job.result()
            failed += ": rc 0," not in line and "done already" not in line
            print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)
    print(f"study: {len(runs)} runs, {(time.time() - t0) / 60:.1f} min wall, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
