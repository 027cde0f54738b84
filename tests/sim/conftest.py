"""Shared fixtures for the synthetic-world tests: small worlds and a few cached frames."""

from __future__ import annotations

import pytest

from anyseg_sim import SyntheticWorld, WorldConfig

SMALL = {"width": 160, "height": 120}


@pytest.fixture(scope="session")
def world() -> SyntheticWorld:
    """A 160x120 world; frames are cached inside it, so tests share renders."""
    return SyntheticWorld(WorldConfig(seed=3, **SMALL))


@pytest.fixture(scope="session")
def exact_world() -> SyntheticWorld:
    """The same map without depth noise, for exact geometry checks."""
    return SyntheticWorld(WorldConfig(seed=3, depth_noise=0.0, **SMALL))


@pytest.fixture(scope="session")
def frames(world):
    """Frames 0..2 under sun, cached for the session."""
    return [world.frame(i) for i in range(3)]
