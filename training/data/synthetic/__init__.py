"""A procedural, deterministic multi-sensor driving world (RGB, depth, events, LiDAR, labels).

    from training.data.synthetic import SyntheticWorld, WorldConfig
    world = SyntheticWorld(WorldConfig(width=320, height=240, seed=0))
    frame = world.frame(0, condition="night", failure=None)

See README.md in this folder for what each sensor carries and how conditions change it.
Names are imported lazily, so ``training.data.synthetic.config`` stays cheap for CLIs that only
validate arguments (the renderer imports anyseg_model, which imports torch).
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
