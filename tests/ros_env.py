"""Environment and process helpers for tests that start ROS 2 processes.

Every child speaks DDS on this machine only (config/fastdds_loopback.xml: shared memory + UDPv4 on
127.0.0.1, builtin transports off; ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST), on a ROS domain of
its own test run, and is killed by its process group id when the test ends, pass or fail.
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

REPO = Path(__file__).resolve().parents[1]
LOOPBACK_PROFILE = REPO / "config" / "fastdds_loopback.xml"
PYTHON = sys.executable


def run_domain_id(pid: int | None = None) -> int:
    """A ROS domain for this test run, 1..100 from the pytest process id: never 0, the domain
    every other ROS program on the machine uses by default."""
    return 1 + (os.getpid() if pid is None else pid) % 100


def ros_env(domain_id: int | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) set up for loopback-only DDS."""
    env = dict(os.environ if base is None else base)
    for var in ("ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS", "FASTRTPS_DEFAULT_PROFILES_FILE"):
        env.pop(var, None)
    env.update(
        FASTDDS_DEFAULT_PROFILES_FILE=str(LOOPBACK_PROFILE),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_DOMAIN_ID=str(run_domain_id() if domain_id is None else domain_id),
        RMW_IMPLEMENTATION="rmw_fastrtps_cpp",
        PYTHONUNBUFFERED="1",
    )
    return env


def start(args: Sequence[str], env: Mapping[str, str], **popen_kwargs) -> subprocess.Popen:
    """Start ``args`` in a new session, so its process group id is its pid (see :func:`kill`)."""
    return subprocess.Popen(list(args), env=dict(env), start_new_session=True, **popen_kwargs)


def kill(proc: subprocess.Popen, grace_s: float = 5.0) -> int | None:
    """SIGTERM then, after ``grace_s``, SIGKILL the process group of ``proc`` (by its pid)."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, grace_s)):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
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
