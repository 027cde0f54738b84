"""A procedural, deterministic multi-sensor driving world (RGB, depth, events, LiDAR, labels).

    from anyseg_sim import SyntheticWorld, WorldConfig
    world = SyntheticWorld(WorldConfig(width=320, height=240, seed=0))
    frame = world.frame(0, condition="night", failure=None)

Who uses it: the demo, the tests, the benchmarks and the synthetic training data. Besides the
world it holds its writers (``write_bag``: a rosbag2 recording, ``write_deliver``: a DELIVER
layout), its command line (``anyseg-synthesize``, :mod:`anyseg_sim.cli`) and a live rig that
publishes it as ROS 2 sensor topics (:mod:`anyseg_sim.live_rig`, the only part that needs
rclpy). See README.md in this folder for what each sensor carries and how conditions change it.
Names are imported lazily, so ``anyseg_sim.config`` stays cheap for a CLI that only validates
its arguments.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import AFFECTS, CONDITIONS, FAILURES, WorldConfig, parse_list

_LAZY = {
    "SCENE_CLASSES": ".prims",
    "CameraInfo": ".world",
    "Frame": ".world",
    "SyntheticWorld": ".world",
    "write_deliver": ".deliver_writer",
    "write_bag": ".bag_writer",
}

__all__ = ["AFFECTS", "CONDITIONS", "FAILURES", "WorldConfig", "parse_list", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
