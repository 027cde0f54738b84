"""The synthetic world as a training data set (``--data synthetic`` or ``synthetic:DIR``).

Frames come from :class:`anyseg_sim.SyntheticWorld` as raw sensor arrays (RGB
uint8, depth float32 metres, event mono8, LiDAR points + K + extrinsic, labels uint8 with 255
ignore) and are encoded later by the node's representations, never pre-rendered.

Splits hold out whole scenes: every split draws its frames from its own world seeds (a
different map, objects, colours, sun and ego speed per seed), so validation never sees a street
the model trained on. Within a split, frames cycle through the requested weather conditions (and
failure cases, if any), so every condition is in every split.

Rendering costs about 0.1 s per 128x96 frame, so a split is generated once into
``<cache_dir>/synthetic-<key>/<split>/`` (one ``.npz`` of raw arrays per frame) and reused by
every later run; the key hashes the world options AND the world's source code, so a changed
renderer never serves stale frames. ``--data synthetic:DIR`` instead pins a data set: frames are
generated into ``DIR/<split>/`` once and then used as they are (the stored options must match
the config's; the renderer's code is not checked), so an experiment's runs all see the same
frames even if the world code changes meanwhile. ``in_memory=True`` skips the disk (tests).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import anyseg_sim
from anyseg_model.classes import DELIVER_CLASSES, DELIVER_PALETTE
from anyseg_model.modalities import MODALITIES, canonical
from anyseg_model.representations import (
    DEFAULT_REPRESENTATIONS,
    LidarScan,
    Representation,
    project_lidar,
)
from anyseg_sim import CONDITIONS, FAILURES, SyntheticWorld, WorldConfig, parse_list
from anyseg_sim.files import raw_arrays, raw_inputs, save_npz

from .registry import register_dataset

# Seeds per split: disjoint, so scenes are held out. Offsets are far apart to stay disjoint for
# any sane number of worlds per split.
SPLIT_OFFSET = {"train": 0, "val": 10_000, "test": 20_000}


@dataclass(frozen=True)
class SyntheticSpec:
    """Which frames make a split. ``frames`` are spread over ``worlds`` maps of that split."""

    split: str = "train"
    frames: int = 100
    worlds: int = 4
    seed: int = 0
    height: int = 96
    width: int = 128
    conditions: tuple[str, ...] = ("sun", "cloud", "night", "fog", "rain")
    failures: tuple[str, ...] = ()
    failure_every: int = 4  # with failures: every n-th frame gets one (cycling through them)
    start_index: int = 4  # skip the first frames of a drive (events need a previous frame)
    stride: int = 1  # frame index step within a drive

    def world_seeds(self) -> list[int]:
        if self.split not in SPLIT_OFFSET:
            raise ValueError(f"unknown synthetic split {self.split!r}; valid: {list(SPLIT_OFFSET)}")
        return [self.seed * 100 + SPLIT_OFFSET[self.split] + k for k in range(self.worlds)]

    def plan(self) -> list[tuple[int, int, str, str | None]]:
        """(world seed, frame index, condition, failure) for every frame, deterministic."""
        seeds = self.world_seeds()
        conditions = self.conditions or ("sun",)
        out = []
        for i in range(self.frames):
            w = i % len(seeds)
            idx = self.start_index + (i // len(seeds)) * self.stride
            cond = conditions[i % len(conditions)]
            fail = None
            if self.failures and i % self.failure_every == self.failure_every - 1:
                fail = self.failures[(i // self.failure_every) % len(self.failures)]
            out.append((seeds[w], idx, cond, fail))
        return out


def _source_hash() -> str:
    """Hash of the synthetic world's code, so renderer changes invalidate cached frames."""
    h = hashlib.sha1()
    for p in sorted(Path(anyseg_sim.__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:10]


def spec_key(spec: SyntheticSpec) -> str:
    blob = json.dumps(asdict(spec), sort_keys=True) + _source_hash()
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def visible_points(scan: LidarScan) -> np.ndarray:
    """The points that land in the camera image: all the lidar_projected input ever uses (a
    test checks the encoding is unchanged); keeps cached frames about 4x smaller."""
    return scan.points[(project_lidar(scan).pixel[:, 0] >= 0)]


def render_frame(
    world: Any, index: int, condition: str, failure: str | None
) -> dict[str, np.ndarray]:
    """One frame's raw arrays as stored in the cache."""
    f = world.frame(index, condition=condition, failure=failure)
    return raw_arrays(f, lidar_points=visible_points(f.lidar_scan()))


@dataclass
class SyntheticDataset:
    """Raw samples of a synthetic split, generated on first use (disk cache or memory)."""

    spec: SyntheticSpec
    modalities: tuple[str, ...] = MODALITIES
    cache_dir: str | Path | None = "runs/data"
    in_memory: bool = False
    pinned_dir: str | Path | None = None  # synthetic:DIR, see the module docstring
    show_progress: bool = True
    classes: tuple[str, ...] = DELIVER_CLASSES
    palette: tuple = DELIVER_PALETTE
    _frames: list[dict[str, np.ndarray]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self.modalities = canonical(self.modalities)
        self.plan = self.spec.plan()
        if self.in_memory or self.cache_dir is None:
            self._frames = [
                render_frame(*self._world_frame(p)) for p in self._progress(self.plan, "render")
            ]
            self.folder = None
        else:
            if self.pinned_dir is not None:
                self.folder = Path(self.pinned_dir) / self.spec.split
            else:
                self.folder = (
                    Path(self.cache_dir) / f"synthetic-{spec_key(self.spec)}" / self.spec.split
                )
            self._ensure_on_disk()

    def _progress(self, items, desc: str):
        from tqdm import tqdm

        return tqdm(
            items,
            desc=f"synthetic {self.spec.split} {desc}",
            disable=not self.show_progress,
            mininterval=1.0 if os.isatty(2) else 30.0,
        )

    _worlds: dict = field(default_factory=dict, repr=False)

    def _world_frame(self, p: tuple[int, int, str, str | None]) -> tuple[Any, int, str, str | None]:
        seed, idx, cond, fail = p
        if seed not in self._worlds:
            self._worlds.clear()  # frames are grouped by world only loosely; keep one alive
            self._worlds[seed] = SyntheticWorld(
                WorldConfig(width=self.spec.width, height=self.spec.height, seed=seed)
            )
        return self._worlds[seed], idx, cond, fail

    def _ensure_on_disk(self) -> None:
        done = self.folder / "complete.json"
        if done.is_file():
            stored = json.loads(done.read_text())["spec"]
            want = json.loads(json.dumps(asdict(self.spec)))
            if stored != want:
                diff = sorted(k for k in want if stored.get(k) != want[k])
                raise ValueError(
                    f"{self.folder} holds a synthetic set made with other options ({diff}); "
                    "use another folder or the matching config"
                )
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        # Render world by world (one world object alive at a time), write each frame atomically.
        order = sorted(range(len(self.plan)), key=lambda i: (self.plan[i][0], i))
        for i in self._progress(order, f"-> {self.folder}"):
            path = self.folder / f"{i:06d}.npz"
            if path.is_file():
                continue
            save_npz(path, **render_frame(*self._world_frame(self.plan[i])))
        done.write_text(json.dumps({"spec": asdict(self.spec), "frames": len(self.plan)}, indent=1))

    def representations(self) -> dict[str, Representation]:
        return {m: Representation(DEFAULT_REPRESENTATIONS[m]) for m in self.modalities}

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, i: int) -> dict[str, Any]:
        seed, idx, cond, fail = self.plan[i]
        name = f"world{seed}/{idx:05d}_{cond}" + (f"_{fail}" if fail else "")
        if self.folder is None:
            z = self._frames[i]
            return {"arrays": raw_inputs(z, self.modalities), "label": z["labels"], "name": name}
        with np.load(self.folder / f"{i:06d}.npz") as z:
            return {
                "arrays": raw_inputs(z, self.modalities),
                "label": z["labels"].copy(),
                "name": name,
            }


def spec_from_config(split: str, cfg: Any) -> SyntheticSpec:
    """The split a config asks for (data.world_* and data.{train,val}_frames)."""
    d = cfg.data
    frames = d.train_frames if split == "train" else d.val_frames
    worlds = max(1, d.train_worlds if split == "train" else d.val_worlds)
    return SyntheticSpec(
        split=split,
        frames=frames,
        worlds=worlds,
        seed=d.world_seed,
        height=d.world_size[0],
        width=d.world_size[1],
        conditions=tuple(parse_list(d.world_conditions, CONDITIONS, "condition")),
        failures=tuple(parse_list(d.world_failures, FAILURES, "failure")),
    )


@register_dataset("synthetic")
def _from_config(path: str | None, split: str, cfg: Any) -> SyntheticDataset:
    spec = spec_from_config(split, cfg)
    mods = tuple(m for m in cfg.model.modalities if m in MODALITIES)
    return SyntheticDataset(spec, mods, cache_dir=cfg.data.cache_dir, pinned_dir=path)
