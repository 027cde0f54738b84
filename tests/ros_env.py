"""Environment and process helpers for tests that start ROS 2 processes.

The helpers themselves live in the package (:mod:`anyseg_ros.localdds`), because the demo and the
live evaluator need the same loopback-only DDS and kill-by-process-group discipline.
"""

from __future__ import annotations

import sys
from pathlib import Path

from anyseg_ros.localdds import child, kill, loopback_env, run_domain_id, start

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
ros_env = loopback_env  # the name the tests use

__all__ = ["PYTHON", "REPO", "child", "kill", "ros_env", "run_domain_id", "start"]
