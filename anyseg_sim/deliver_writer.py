"""Write synthetic drives in DELIVER's directory layout and file naming.

    <root>/img/<condition>/<split>/<scene>/<id>_rgb_front.png            RGB
    <root>/hha/<condition>/<split>/<scene>/<id>_depth_front.png          HHA of the measured depth
    <root>/depth/<condition>/<split>/<scene>/<id>_depth_front.png        depth rendering
    <root>/event/<condition>/<split>/<scene>/<id>_event_front.png        event rendering
    <root>/lidar/<condition>/<split>/<scene>/<id>_lidar_front.png        projected LiDAR
    <root>/semantic/<condition>/<split>/<scene>/<id>_semantic_front.png  red = class id + 1
    <root>/raw/<condition>/<split>/<scene>/<id>_raw_front.npz            raw sensor arrays

A DELIVER loader globs ``img/*/<split>/*/*.png`` and derives every other path from the RGB path
(``/img`` -> ``/hha``, ``_rgb`` -> ``_depth``, ...); the raw arrays follow the same rule
(``/img`` -> ``/raw``, ``_rgb`` -> ``_raw``, ``.png`` -> ``.npz``). Keys of the raw ``.npz``,
in the node's wire formats:

- ``rgb`` uint8 (H, W, 3); ``labels`` uint8 (H, W) class ids (255 = ignore);
- ``depth`` float32 (H, W) metres, camera z, 0 = no measurement;
- ``event`` uint8 (H, W), 128 + net event count (mono8);
- ``lidar`` float32 (N, 4) x, y, z, intensity in the LiDAR frame, ``lidar_labels`` uint8 (N,),
  ``lidar_K`` (3, 3), ``lidar_D`` (5,), ``lidar_extrinsic`` (4, 4) lidar -> camera optical,
  ``image_size_hw`` (height, width).

Scenes with a sensor failure get the DELIVER suffix (``<scene>_motionblur``). Every scene is
rendered under every requested condition (same map and drive, different weather), and scene k
always lands in the same split (:func:`split_of`), so held-out scenes stay held out whatever
else is generated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .config import WorldConfig, check_condition, check_failure
from .files import raw_arrays, renderings, save_npz, save_png, semantic_png, write_calibration
from .world import Frame, SyntheticWorld

MODALITY_FOLDERS = ("img", "hha", "depth", "event", "lidar", "semantic", "raw")


def split_of(scene: int) -> str:
    """Fixed split of scene index ``scene``: 3 of every 5 train, then one val, one test."""
    return ("train", "train", "train", "val", "test")[scene % 5]


def scene_seed(seed: int, scene: int) -> int:
    """World seed of scene ``scene`` of a data set generated with ``seed``."""
    return int(np.random.SeedSequence([seed, scene]).generate_state(1)[0])


def scene_name(seed: int, scene: int, failure: str | None = None) -> str:
    name = f"synth{seed}_{scene:03d}"
    return f"{name}_{failure}" if failure else name


def frame_paths(root: Path, condition: str, split: str, scene: str, index: int) -> dict[str, Path]:
    """Every file of one frame, keyed by modality folder."""
    fid = f"{index:06d}"
    token = {
        "img": "rgb",
        "hha": "depth",
        "depth": "depth",
        "event": "event",
        "lidar": "lidar",
        "semantic": "semantic",
        "raw": "raw",
    }
    paths = {
        m: root / m / condition / split / scene / f"{fid}_{token[m]}_front.png"
        for m in MODALITY_FOLDERS
    }
    paths["raw"] = paths["raw"].with_suffix(".npz")
    return paths


def write_frame(root: Path, frame: Frame, split: str, scene: str, index: int) -> dict[str, Path]:
    paths = frame_paths(root, frame.condition, split, scene, index)
    rend = renderings(frame)
    save_png(paths["img"], frame.rgb)
    save_png(paths["semantic"], semantic_png(frame.labels))
    for m in ("hha", "depth", "event", "lidar"):
        save_png(paths[m], rend[m])
    save_npz(paths["raw"], **raw_arrays(frame), lidar_labels=frame.lidar_labels)
    return paths


def write_deliver(
    root: str | Path,
    *,
    frames: int,
    width: int,
    height: int,
    seed: int,
    conditions: Sequence[str] = ("sun",),
    failures: Sequence[str] = (),
    scenes: int = 5,
    world_options: dict[str, Any] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> list[Path]:
    """Generate ``scenes`` drives of ``frames`` frames each, under every condition, plus each
    failure under every condition; returns the RGB paths written. ``world_options`` are further
    :class:`WorldConfig` fields (e.g. ``lidar_columns``); ``on_frame`` is called after every
    written frame (progress bars)."""
    root = Path(root)
    for c in conditions:
        check_condition(c)
    for f in failures:
        check_failure(f)
    if frames < 1 or scenes < 1:
        raise ValueError(f"frames and scenes must be >= 1, got frames={frames}, scenes={scenes}")
    cases = [(c, None) for c in conditions] + [(c, f) for f in failures for c in conditions]
    written = []
    first = None
    for k in range(scenes):
        cfg = WorldConfig(
            width=width, height=height, seed=scene_seed(seed, k), **(world_options or {})
        )
        world = SyntheticWorld(cfg)
        for i in range(frames):
            for condition, failure in cases:  # same instant under every case: renders are shared
                frame = world.frame(i, condition, failure)
                first = first or frame
                paths = write_frame(root, frame, split_of(k), scene_name(seed, k, failure), i)
                written.append(paths["img"])
                if on_frame:
                    on_frame()
    write_calibration(root / "calibration.yaml", first)
    manifest = {
        "generator": "anyseg_sim",
        "seed": seed,
        "size": [width, height],
        "frames_per_scene": frames,
        "conditions": list(conditions),
        "failures": list(failures),
        "scenes": {
            scene_name(seed, k): {"split": split_of(k), "world_seed": scene_seed(seed, k)}
            for k in range(scenes)
        },
        "world_options": dict(world_options or {}),
        "frame_dt_s": cfg.frame_dt,
        "event_window_s": cfg.event_window,
    }
    (root / "synthetic.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return written
