"""Data sources by prefix (``--data synthetic``, ``deliver:PATH``, ``muses:PATH``, ``bag:PATH``)
and the one wrapper that turns raw samples into training tensors.

A source module registers a factory with :func:`register_dataset`; the registry imports the
module named in :data:`PLUGINS` the first time its prefix is asked for, so adding a source is one
new module plus one line here (e.g. ``bag`` -> ``training.data.rosbag``).

A raw data set yields ``{"arrays": {modality: raw array or LidarScan}, "label": uint8 (H, W)}``
(optionally ``"available"``: the modalities the frame really has) and provides ``classes``,
``palette``, ``modalities`` and ``representations()``. :class:`EncodedDataset` encodes the arrays
with those representations through :func:`anyseg_model.preprocess.encode`, the function the
node calls, then augments.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from anyseg_model.preprocess import encode, is_dense, resize
from anyseg_model.representations import Representation

from .transforms import resize_label


class RawDataset(Protocol):
    classes: tuple[str, ...]
    palette: Any
    modalities: tuple[str, ...]

    def representations(self) -> dict[str, Representation]: ...
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> dict[str, Any]: ...


# factory(path or None, split, config) -> RawDataset
Factory = Callable[[str | None, str, Any], RawDataset]
_REGISTRY: dict[str, Factory] = {}
PLUGINS = {
    "synthetic": "training.data.synth_dataset",
    "deliver": "training.data.deliver",
    "muses": "training.data.muses",
    "bag": "training.data.rosbag",
}


def register_dataset(prefix: str) -> Callable[[Factory], Factory]:
    """Decorator: ``@register_dataset("bag")`` makes ``--data bag:PATH`` build with it."""

    def deco(fn: Factory) -> Factory:
        _REGISTRY[prefix] = fn
        return fn

    return deco


def parse_source(text: str) -> tuple[str, str | None]:
    """``'deliver:/data/DELIVER'`` -> ``('deliver', '/data/DELIVER')``;
    ``'synthetic'`` -> ``('synthetic', None)``."""
    prefix, sep, path = text.partition(":")
    return prefix.strip(), (path.strip() or None) if sep else None


def build_raw(source: str, split: str, cfg: Any) -> RawDataset:
    """The raw data set of ``source`` (a registered prefix, optionally ``:PATH``) for ``split``."""
    prefix, path = parse_source(source)
    if prefix not in _REGISTRY and prefix in PLUGINS:
        try:
            importlib.import_module(PLUGINS[prefix])
        except ModuleNotFoundError as e:
            if e.name != PLUGINS[prefix]:
                raise
    if prefix not in _REGISTRY:
        known = sorted(
            set(_REGISTRY) | {p for p, m in PLUGINS.items() if importlib.util.find_spec(m)}
        )
        raise ValueError(
            f"unknown data source {source!r}; valid prefixes: {known} (as PREFIX or PREFIX:PATH)"
        )
    return _REGISTRY[prefix](path, split, cfg)


@dataclass
class Encoded:
    """One sample as the network sees it, cached compactly (fp16 inputs, uint8 label)."""

    inputs: dict[str, Tensor]
    label: Tensor
    available: Tensor


class EncodedDataset(torch.utils.data.Dataset):
    """Raw samples -> ``{"inputs": {m: (3, H, W) float32}, "label": (H, W) int64,
    "available": (M,) bool}``, encoded once (optionally cached) and augmented per (epoch, index).

    Every modality is brought to the label's size (dense ones bilinearly, sparse ones nearest),
    as the reference resizes DELIVER's event images to the RGB size.
    """

    def __init__(
        self,
        raw: RawDataset,
        transform: Callable | None = None,
        *,
        cache: bool = False,
        seed: int = 0,
        representations: Mapping[str, Representation] | None = None,
    ) -> None:
        self.raw = raw
        self.modalities = tuple(raw.modalities)
        self.representations = dict(representations or raw.representations())
        self.dense = {m: is_dense(m, self.representations[m]) for m in self.modalities}
        self.transform = transform
        self.cache: dict[int, Encoded] | None = {} if cache else None
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Augmentations of the next pass depend on this (and on the seed and index only)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.raw)

    def encoded(self, i: int) -> Encoded:
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        s = self.raw[i]
        label = torch.from_numpy(np.ascontiguousarray(s["label"]))
        size = tuple(label.shape)
        inputs = {}
        for m, x in encode(
            {m: s["arrays"][m] for m in self.modalities if m in s["arrays"]}, self.representations
        ).items():
            inputs[m] = resize(torch.from_numpy(x), size, self.dense[m])
        avail = s.get("available")
        avail = (
            torch.as_tensor([m in inputs for m in self.modalities])
            if avail is None
            else torch.as_tensor(avail)
        )
        for m in self.modalities:  # absent in the raw sample: zeros, never used (mask says absent)
            inputs.setdefault(m, torch.zeros(3, *size))
        e = Encoded(inputs, label, avail.to(torch.bool))
        if self.cache is not None:
            self.cache[i] = Encoded({m: x.half() for m, x in inputs.items()}, label, e.available)
            e = self.cache[i]
        return e

    def __getitem__(self, i: int) -> dict[str, Any]:
        e = self.encoded(i)
        sample = {
            "inputs": {m: x.float() for m, x in e.inputs.items()},
            "label": e.label.long(),
            "available": e.available,
        }
        if self.transform is not None:
            # A private stream per (seed, epoch, index): independent of workers and order.
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
            sample = self.transform(sample, g)
        return sample


__all__ = [
    "EncodedDataset",
    "PLUGINS",
    "build_raw",
    "parse_source",
    "register_dataset",
    "resize_label",
]
