"""Start the node and the stand-in rig as child processes and watch what the rig reports."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ros_env
import yaml

from training.data.synthetic.config import WorldConfig
from training.data.synthetic.rig import Rig

RIG = Path(__file__).with_name("rig.py")
# The synthetic world rig's lidar -> camera optical transform (what rig.py publishes), row-major.
# Floats only: rcl's YAML parser refuses a list that mixes 0 and 0.0.
LIDAR_TO_CAMERA = [float(v) for v in Rig(WorldConfig()).T_cam_lidar.reshape(-1)]


def write_params(path: Path, **params: Any) -> Path:
    """A --params-file for anyseg_node; dotted names become nested YAML (``lidar.timeout_ms``)."""
    tree: dict[str, Any] = {}
    for name, value in params.items():
        *parents, leaf = name.split(".")
        node = tree
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump({"anyseg_node": {"ros__parameters": tree}}))
    return path


def node_command(params_file: Path) -> list[str]:
    return [
        ros_env.PYTHON,
        "-m",
        "anyseg_ros.node",
        "--ros-args",
        "--params-file",
        str(params_file),
    ]


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
