"""Training killed with SIGKILL, then --resume: no temp file stays behind and log.csv holds every
(step, key) once (issue 14 item 8). Real processes, real SIGKILLs."""

import csv
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from anyseg_model.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[2]
SMOKE = "training/configs/smoke.yaml"

# A writer that dies in the middle of torch.save: a 64 MB payload takes long enough to be caught
# while its temp file exists; the test kills it there.
SLOW_SAVE = """
import sys, torch
from anyseg_model import create_model, save_checkpoint
big = torch.zeros(16_000_000)
save_checkpoint(create_model("anyseg_tiny", 25), sys.argv[1], extra={"big": big})
"""


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))[1:]


def _train(out: Path, data: Path, *extra: str) -> subprocess.Popen:
    args = [
        sys.executable,
        "training/train_teacher.py",
        "--config",
        SMOKE,
        "--out",
        str(out),
        f"data.cache_dir={data}",
        "data.train_frames=16",
        "data.val_frames=2",
        "optim.epochs=3",
        "optim.batch_size=2",
        "run.log_every=1",
        *extra,
    ]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_sigkill_then_resume_leaves_no_temp_files_and_no_duplicate_rows(tmp_path):
    out, data = tmp_path / "run", tmp_path / "data"
    ckpt = out / "checkpoint.pt"
    per_epoch = 8  # 16 frames / batch 2

    # 1. Kill the trainer in its second epoch, after the first checkpoint and several log rows.
    proc = _train(out, data)

    def rows_after_checkpoint() -> bool:
        if not ckpt.is_file() or not (out / "log.csv").is_file():
            return False
        steps = [int(r[0]) for r in _rows(out / "log.csv") if r]
        return any(s >= per_epoch + 3 for s in steps)

    _wait_for(rows_after_checkpoint, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = int(read_checkpoint(ckpt)["extra"]["step"])
    logged = [int(r[0]) for r in _rows(out / "log.csv")]
    assert max(logged) > done  # rows past the checkpoint exist: a naive resume would repeat them

    # 2. A save of the final checkpoint killed half-way leaves its temp file (the same happens
    # to checkpoint.pt when the kill lands inside its save).
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_SAVE, str(out / "teacher.pt")], cwd=ROOT, stderr=subprocess.PIPE
    )
    _wait_for(lambda: any(out.glob(".teacher.pt.*")), writer)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert list(out.glob(".teacher.pt.*")), "the killed save left no temp file to clean"

    # 3. Resume to the end.
    proc = _train(out, data, "--resume")
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert not list(out.glob(".*.pt.*")), list(out.glob(".*"))
    rows = _rows(out / "log.csv")
    counts = Counter((r[0], r[2]) for r in rows)
    assert max(counts.values()) == 1, [k for k, n in counts.items() if n > 1][:5]
    train_steps = sorted(int(s) for s, k in counts if k == "train/sup")
    assert train_steps == list(range(1, 3 * per_epoch + 1))  # every step once, none lost
