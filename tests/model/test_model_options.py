"""Model options beyond the paper: presence-gated fusion, per-subset-size head BatchNorm, frozen
BatchNorm statistics for extra passes, and the first patch embedding's empty-window gradient."""

import pytest
import torch

from anyseg_model import MODALITIES, all_subsets, create_model, load_checkpoint, save_checkpoint
from anyseg_model.model import frozen_bn_stats

H, W = 32, 48


def _x(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, 3, H, W, generator=g) for m in MODALITIES}


PRESENT = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 1], [0, 1, 1, 1]], dtype=torch.bool)


@pytest.fixture(scope="module")
def gated():
    torch.manual_seed(0)
    model = create_model("anyseg_tiny", 5, fusion="gated").eval()
    with torch.no_grad():  # move the gates off their zero start, so they matter
        for gate in model.fusion_gates:
            gate.weight.normal_(0, 0.5)
            gate.bias.normal_(0, 1.0)
    return model


def test_gated_starts_as_the_mean():
    torch.manual_seed(0)
    mean = create_model("anyseg_tiny", 5).eval()
    gated = create_model("anyseg_tiny", 5, fusion="gated").eval()
    missing, unexpected = gated.load_state_dict(mean.state_dict(), strict=False)
    assert all(k.startswith("fusion_gates.") for k in missing) and not unexpected
    x = _x()
    torch.testing.assert_close(gated(x, PRESENT), mean(x, PRESENT), atol=1e-6, rtol=1e-5)


def test_gate_weights_cover_present_streams_only(gated):
    feats = gated.forward_features(_x(), PRESENT)
    ids = torch.arange(4)
    for gate, f in zip(gated.fusion_gates, feats.per_modality, strict=True):
        w = gate.weights(f, PRESENT, ids)  # (B, M, h, w)
        assert torch.equal(w[~PRESENT], torch.zeros_like(w[~PRESENT]))  # exactly 0, not small
        torch.testing.assert_close(w.sum(1), torch.ones_like(w.sum(1)))
        assert not torch.allclose(w[1, 0], w[1, 1])  # per-pixel weights that differ by stream


def test_gated_any_subset_works_and_absent_content_is_ignored(gated):
    x = _x()
    y = {m: v.clone() for m, v in x.items()}
    y["depth"][0] = 1e3  # absent in sample 0
    y["rgb"][2] = -1e3  # absent in sample 2
    assert torch.equal(gated(x, PRESENT), gated(y, PRESENT))
    for subset in all_subsets():
        out = gated({m: x[m] for m in subset})
        assert out.shape == (3, 5, H, W) and torch.isfinite(out).all()
    # a mixed batch equals each sample run with only its own modalities
    out = gated(x, PRESENT)
    for b in range(3):
        mods = [m for j, m in enumerate(MODALITIES) if PRESENT[b, j]]
        alone = gated({m: x[m][b : b + 1] for m in mods})
        torch.testing.assert_close(out[b : b + 1], alone, atol=1e-5, rtol=1e-4)


def test_a_stream_can_win_where_its_score_is_high():
    torch.manual_seed(0)
    model = create_model("anyseg_tiny", 5, fusion="gated").eval()
    with torch.no_grad():
        for gate in model.fusion_gates:
            gate.bias[MODALITIES.index("rgb")] = 50.0  # rgb dominates wherever it is present
    x = _x(b=1)
    feats = model.forward_features(x)
    rgb_alone = model.forward_features({"rgb": x["rgb"]})
    for fused, alone in zip(feats.fused, rgb_alone.fused, strict=True):
        torch.testing.assert_close(fused, alone, atol=1e-4, rtol=1e-4)


def test_gated_and_per_size_round_trip_through_a_checkpoint(tmp_path, gated):
    model = create_model("anyseg_tiny", 5, fusion="gated", head_norm="per_size")
    model.fusion_gates.load_state_dict(gated.fusion_gates.state_dict())
    with torch.no_grad():
        model.decode_head.fuse[1].running_mean.uniform_(-1, 1)
    model.eval()
    path = save_checkpoint(model, tmp_path / "g.pt")
    ck = load_checkpoint(path)  # weights_only=True inside
    assert ck.model.config["fusion"] == "gated" and ck.model.config["head_norm"] == "per_size"
    x = _x()
    assert torch.equal(ck.model(x, PRESENT), model(x, PRESENT))


def test_per_size_statistics_are_chosen_by_subset_size():
    torch.manual_seed(0)
    model = create_model("anyseg_tiny", 5, head_norm="per_size")
    bn = model.decode_head.fuse[1]
    model.train()
    model(_x(), PRESENT)  # sizes 1, 3, 3
    assert bn.num_batches_tracked.tolist() == [1, 0, 1, 0]
    assert not torch.equal(bn.running_mean[0], bn.running_mean[2])
    assert torch.equal(bn.running_mean[1], torch.zeros_like(bn.running_mean[1]))
    model.eval()
    x = _x()
    with torch.no_grad():
        before = model(x, PRESENT)
        bn.running_mean[3] += 5.0  # statistics of the full set: no sample here has 4 modalities
        assert torch.equal(model(x, PRESENT), before)
        bn.running_mean[0] += 5.0  # sample 0 has one modality: only it changes
        after = model(x, PRESENT)
    assert not torch.allclose(after[0], before[0]) and torch.equal(after[1:], before[1:])
    with pytest.raises(ValueError, match="per subset size"):
        model.forward_head(model.forward_features(x, PRESENT).fused)


@pytest.mark.parametrize("head_norm", ["batch", "per_size"])
def test_frozen_bn_stats_leaves_statistics_alone(head_norm):
    torch.manual_seed(0)
    model = create_model("anyseg_tiny", 5, head_norm=head_norm).train()
    bn = model.decode_head.fuse[1]
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    with frozen_bn_stats(model.decode_head):
        out = model(_x(), PRESENT)
    for k, v in bn.state_dict().items():
        assert torch.equal(v, state[k]), k
    out.mean().backward()  # still trains (batch statistics, gradients flow)
    assert bn.weight.grad is not None
    model(_x(), PRESENT)
    assert int(bn.num_batches_tracked.sum()) > int(state["num_batches_tracked"].sum())


def test_empty_windows_do_not_blow_up_the_first_gradient():
    """No events and no LiDAR return are all-zero inputs; with a zero patch-embedding bias the
    LayerNorm after it saw a constant token and the step-1 gradient was ~1e7 times later ones."""
    torch.manual_seed(0)
    model = create_model("anyseg_tiny", 5)
    dense = _x(b=2)
    sparse = {m: v.clone() for m, v in dense.items()}
    sparse["event"].zero_()
    sparse["lidar"][:, :, :, : W // 2] = 0  # half the image without a return
    norms = []
    for x in (dense, sparse):
        model.zero_grad()
        model(x).logsumexp(1).mean().backward()
        norms.append(torch.sqrt(sum((p.grad**2).sum() for p in model.parameters())).item())
    assert norms[1] < 10 * norms[0], norms
