"""Loopback-only DDS for the demo, the live evaluator and the tests, and child processes that are
always killed by their process group id.

Everything runs on this machine only: config/fastdds_loopback.xml (shared memory plus UDPv4 on
127.0.0.1, builtin transports off), ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a ROS domain of
the run's own, so nothing reaches another address and parallel runs do not see each other.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

PROFILE_NAME = "fastdds_loopback.xml"


def config_file(name: str) -> Path:
    """A file of config/: from a source checkout, or share/anyseg_ros/config of an install."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "config" / name]
    candidates += [p / "share" / "anyseg_ros" / "config" / name for p in here.parents]
    candidates.append(Path(sys.prefix) / "share" / "anyseg_ros" / "config" / name)
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(
        f"config file {name} not found (looked in {[str(c.parent) for c in candidates[:2]]})"
    )


def run_domain_id(pid: int | None = None) -> int:
    """A ROS domain for this run, 1..100 from the process id: never 0, the domain every other ROS
    program on the machine uses by default."""
    return 1 + (os.getpid() if pid is None else pid) % 100


def loopback_env(
    domain_id: int | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``base`` (default: this process's environment) set up for loopback-only DDS."""
    env = dict(os.environ if base is None else base)
    for var in ("ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        env.pop(var, None)
    env.update(
        FASTDDS_DEFAULT_PROFILES_FILE=str(config_file(PROFILE_NAME)),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(run_domain_id() if domain_id is None else domain_id),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
    )
    return env


def start(args: Sequence[str], env: Mapping[str, str], **popen_kwargs) -> subprocess.Popen:
    """Start ``args`` in a new session, so its process group id is its pid (see :func:`kill`)."""
    return subprocess.Popen(list(args), env=dict(env), start_new_session=True, **popen_kwargs)


def kill(proc: subprocess.Popen, grace_s: float = 5.0, first: int = signal.SIGTERM) -> int | None:
    """``first`` (SIGTERM; SIGINT for a clean rclpy shutdown) then, after ``grace_s``, SIGKILL the
    process group of ``proc`` (by its pid). Returns the exit code."""
    for sig in (first, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # children the process left behind in its group
    return proc.poll()


@contextmanager
def child(
    args: Sequence[str], env: Mapping[str, str], **popen_kwargs
) -> Iterator[subprocess.Popen]:
    """``with child([...], env) as proc:`` ... the process group is killed on the way out."""
    proc = start(args, env, **popen_kwargs)
    try:
        yield proc
    finally:
        kill(proc)
