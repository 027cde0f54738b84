"""Anymodal dropout: subset distribution, per-sample vs per-batch, per-rank streams, resume."""

from math import comb

import pytest
import torch

from anyseg_model.modalities import MODALITIES, subset_name
from training.dropout import SubsetSampler, subset_probabilities


def test_anyseg_distribution_formula():
    p = subset_probabilities(MODALITIES)
    assert len(p) == 15
    assert sum(p.values()) == pytest.approx(1.0)
    assert p["rgb"] == pytest.approx(1 / 16)  # 1 / (4 * C(4,1))
    assert p["rgb+depth"] == pytest.approx(1 / 24)
    assert p["rgb+depth+event+lidar"] == pytest.approx(1 / 4)
    for name, v in p.items():
        k = name.count("+") + 1
        assert v == pytest.approx(1 / (4 * comb(4, k)))
    u = subset_probabilities(MODALITIES, "uniform")
    assert all(v == pytest.approx(1 / 15) for v in u.values()) and len(u) == 15
    with pytest.raises(ValueError, match="anyseg"):
        subset_probabilities(MODALITIES, "nope")


def test_empirical_frequencies_match_and_never_empty():
    s = SubsetSampler(MODALITIES, seed=1)
    masks = torch.cat([s.sample(500) for _ in range(40)])  # 20000 draws
    assert masks.any(1).all()
    counts = {}
    for row in masks.tolist():
        name = subset_name([m for m, on in zip(MODALITIES, row, strict=True) if on])
        counts[name] = counts.get(name, 0) + 1
    p = subset_probabilities(MODALITIES)
    for name, prob in p.items():
        assert counts.get(name, 0) / len(masks) == pytest.approx(prob, abs=0.01), name
    sizes = masks.sum(1)
    for k in range(1, 5):
        assert (sizes == k).float().mean().item() == pytest.approx(0.25, abs=0.015)


def test_per_sample_differs_per_batch_is_constant():
    ps = SubsetSampler(MODALITIES, seed=0).sample(64)
    assert len({tuple(r) for r in ps.tolist()}) > 5
    pb = SubsetSampler(MODALITIES, seed=0, mode="per_batch").sample(64)
    assert len({tuple(r) for r in pb.tolist()}) == 1


def test_ranks_get_different_streams_same_seed_same_stream():
    a = SubsetSampler(MODALITIES, seed=3, rank=0).sample(32)
    b = SubsetSampler(MODALITIES, seed=3, rank=1).sample(32)
    c = SubsetSampler(MODALITIES, seed=3, rank=0).sample(32)
    assert not torch.equal(a, b)
    assert torch.equal(a, c)


def test_state_round_trip_continues_the_stream():
    s = SubsetSampler(MODALITIES, seed=5)
    s.sample(10)
    state = s.state_dict()
    want = s.sample(10)
    t = SubsetSampler(MODALITIES, seed=99)
    t.load_state_dict(state)
    assert torch.equal(t.sample(10), want)


def test_available_restricts_and_never_empties():
    s = SubsetSampler(MODALITIES, seed=2)
    avail = torch.tensor([[True, False, False, True]] * 200 + [[False, False, True, False]] * 50)
    m = s.sample(250, avail)
    assert m.any(1).all()
    assert not (m & ~avail).any()
    assert m[200:, 2].all()
    with pytest.raises(ValueError, match="no available"):
        s.sample(1, torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="per_sample"):
        SubsetSampler(MODALITIES, mode="sometimes")
