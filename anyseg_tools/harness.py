"""The node and a sensor rig as child processes, and a watcher of what the rig reports.

The tests and the benchmarks drive the real node this way: :func:`node_command` starts
``anyseg_node`` with a params file, :func:`rig_command` the synthetic world's live rig
(:mod:`anyseg_sim.live_rig`, one JSON line per event on stdout, commands on stdin), and a
:class:`Watcher` collects the rig's lines and waits for the ones a test expects. Start them with
:func:`anyseg_tools.localdds.child` so they run on loopback-only DDS and are killed by pid.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PYTHON = sys.executable


def node_command(params_file: Path, module: str = "anyseg_ros.node") -> list[str]:
    """``python -m anyseg_ros.node --ros-args --params-file FILE``."""
    return [PYTHON, "-m", module, "--ros-args", "--params-file", str(params_file)]


def rig_command(*args: str) -> list[str]:
    """The live synthetic rig with its own arguments (``--rates``, ``--width``, ``--listen``)."""
    return [PYTHON, "-m", "anyseg_sim.live_rig", *args]


class Watcher:
    """Collects the JSON lines a rig process prints, with helpers to wait for and select them."""

    def __init__(self, proc: subprocess.Popen, watch: tuple[subprocess.Popen, ...] = ()) -> None:
        self.proc = proc
        self.watch = (proc, *watch)  # waiting fails at once if one of these exits
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()

    def send(self, command: str) -> float:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return time.monotonic()

    def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float, after: float = 0.0
    ) -> dict[str, Any]:
        """The first event at or after monotonic time ``after`` satisfying ``pred``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ev in self.events:
                    if ev["t"] >= after and pred(ev):
                        return ev
                dead = [p.args for p in self.watch if p.poll() is not None]
                if dead:
                    raise AssertionError(f"process exited while waiting: {dead}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"nothing matched within {timeout} s; last events: {self.events[-5:]}"
                    )
                self._cond.wait(min(left, 0.5))

    def window(self, kind: str, t0: float, t1: float) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e["ev"] == kind and t0 <= e["t"] < t1]

    def published(self, modality: str, t0: float, t1: float) -> list[int]:
        return [e["stamp"] for e in self.window("pub", t0, t1) if e["m"] == modality]


def sensor(diag_event: dict[str, Any], name: str) -> dict[str, Any]:
    return diag_event["status"][name]


def peak_rss_mb(pid: int) -> float:
    """Peak resident set (VmHWM) of a running process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")
