"""The four sensor modalities, their canonical order and the 15 non-empty subsets.

A subset is always spelled as modality names joined by ``+`` in canonical order
(``rgb+depth+lidar``); configs, reports and JSON use that spelling only.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from itertools import combinations


class Modality(str, enum.Enum):
    """A sensor modality. Declaration order is the canonical order."""

    RGB = "rgb"
    DEPTH = "depth"
    EVENT = "event"
    LIDAR = "lidar"

    def __str__(self) -> str:
        return self.value


MODALITIES: tuple[str, ...] = tuple(m.value for m in Modality)
_RANK = {name: i for i, name in enumerate(MODALITIES)}


def canonical(modalities: Iterable[str | Modality]) -> tuple[str, ...]:
    """Validate names, drop duplicates and return them in canonical order."""
    names = {str(Modality(m)) if isinstance(m, Modality) else m for m in modalities}
    unknown = sorted(n for n in names if n not in _RANK)
    if unknown:
        raise ValueError(f"unknown modality {unknown}; valid: {list(MODALITIES)}")
    return tuple(sorted(names, key=_RANK.__getitem__))


def subset_name(modalities: Iterable[str | Modality]) -> str:
    """``{'lidar', 'rgb'}`` -> ``'rgb+lidar'``. Raises on an empty set."""
    names = canonical(modalities)
    if not names:
        raise ValueError("a modality subset must not be empty")
    return "+".join(names)


def parse_subset(name: str) -> tuple[str, ...]:
    """``'rgb+lidar'`` -> ``('rgb', 'lidar')``; the inverse of :func:`subset_name`."""
    parts = [p.strip() for p in name.split("+") if p.strip()]
    if not parts:
        raise ValueError(f"empty modality subset {name!r}")
    return canonical(parts)


def all_subsets(modalities: Iterable[str | Modality] = MODALITIES) -> list[tuple[str, ...]]:
    """Every non-empty subset, smallest first, canonical order within and across sizes."""
    names = canonical(modalities)
    return [c for k in range(1, len(names) + 1) for c in combinations(names, k)]
