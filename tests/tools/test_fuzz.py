"""Seeded fuzzing of the node's input path (anyseg_tools.fuzz): thousands of mutated messages of
every kind through decode, frame assembly and the model's preprocessing. None may crash or reach
the network non-finite; the size claims of hostile messages are refused before anything is
allocated; poisoned pixels and points stay local. bench/fuzz.py runs the long version and a
live one into the node."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from anyseg_tools import fuzz

CASES = 2000  # per kind


@pytest.mark.parametrize("kind", sorted(fuzz.KINDS))
def test_mutated_messages_are_refused_or_reach_the_network_finite(kind):
    tally = fuzz.run(kind, CASES, seed=0)
    assert tally.cases == CASES
    assert tally.crashes == [] and tally.wrong == [], (tally.crashes, tally.wrong)
    # The mutations reach both outcomes: a fuzzer that only ever hits one checks little.
    assert tally.counts["accepted"] > 0 and tally.counts["refused"] > 0, tally.counts


def _refused_small(kind: str, msg, reason: str) -> None:
    tracemalloc.start()
    try:
        outcome, detail = fuzz.run_case(kind, msg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (outcome, detail) == ("refused", reason)
    assert peak < 2**20, f"{peak} bytes allocated before refusing"


def test_size_claims_are_refused_before_anything_is_allocated():
    rng = np.random.default_rng(0)
    info = fuzz.camera_info()
    info.width = info.height = 20_000  # issue 14: a LiDAR-only node was told 20000x20000
    info.k = [20_000.0, 0, 10_000, 0, 20_000.0, 10_000, 0, 0, 1]
    _refused_small("camera_info", info, "too_large")
    img = fuzz.KINDS["rgb8"][2](rng)
    img.width = img.height = 100_000
    img.step = 300_000
    _refused_small("rgb8", img, "too_large")
    cloud = fuzz.KINDS["cloud_xyzi"][2](rng)
    cloud.point_step, cloud.row_step = 1, cloud.width  # 1 byte a point: 16x on decode before
    _refused_small("cloud_xyzi", cloud, "field_layout")
    cloud = fuzz.KINDS["cloud_xyzi"][2](rng)
    cloud.fields[1].offset = 2  # y overlapping x
    _refused_small("cloud_xyzi", cloud, "field_overlap")
    cloud = fuzz.KINDS["cloud_xyzi"][2](rng)
    cloud.fields[0].count = 3
    _refused_small("cloud_xyzi", cloud, "field_count")
    packet = fuzz.KINDS["evt3"][2](rng)
    packet.width = packet.height = 1_000_000
    outcome, _ = fuzz.run_case("evt3", packet)
    assert outcome == "refused"


def test_poisoned_values_reach_the_network_finite():
    rng = np.random.default_rng(1)
    for kind in ("depth_32FC1", "event_32FC1"):
        msg = fuzz.KINDS[kind][2](rng)
        data = np.frombuffer(msg.data, "<f4").copy()
        data[::7] = np.nan
        data[3] = np.inf
        msg.data = data.tobytes()
        assert fuzz.run_case(kind, msg) == ("accepted", "")
    cloud = fuzz.KINDS["cloud_xyzi"][2](rng)
    rec = np.frombuffer(cloud.data, "<f4").reshape(-1, 4).copy()
    rec[::3, 3] = np.nan  # intensities
    rec[1, 1] = np.inf  # a coordinate
    cloud.data = rec.tobytes()
    assert fuzz.run_case("cloud_xyzi", cloud) == ("accepted", "")
