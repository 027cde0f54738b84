"""The anymodal segmentor: shapes, fusion semantics, mixed batches, errors, registry."""

import pytest
import torch

from anyseg_model import (
    MODALITIES,
    all_subsets,
    create_model,
    list_models,
    parse_subset,
    subset_name,
)

H, W = 64, 96


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("anyseg_tiny", num_classes=7).eval()


def _inputs(b=2, seed=0, mods=MODALITIES):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(b, 3, H, W, generator=g) for m in mods}


def test_subset_names_and_count():
    subsets = all_subsets()
    assert len(subsets) == 15
    assert subset_name(["lidar", "rgb", "depth"]) == "rgb+depth+lidar"
    assert parse_subset("lidar+rgb") == ("rgb", "lidar")
    assert [subset_name(s) for s in subsets][-1] == "rgb+depth+event+lidar"
    with pytest.raises(ValueError, match="unknown modality"):
        subset_name(["rgb", "radar"])


@pytest.mark.parametrize("name", ["anyseg_tiny", "anyseg_b0"])
@pytest.mark.parametrize("norm", ["shared", "per_modality"])
def test_forward_backward_every_subset(name, norm):
    """Every subset gives logits at the input size, and gradients reach the shared encoder."""
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, norm=norm)
    x = _inputs(b=1, mods=MODALITIES)
    for subset in all_subsets():
        model.zero_grad()
        out = model({m: x[m][:, :, :32, :32] for m in subset})
        assert out.shape == (1, 5, 32, 32)
        out.mean().backward()
        grad = model.encoder.patch_embed1.proj.weight.grad
        assert grad is not None and grad.abs().sum() > 0, subset


def test_absent_is_not_zeros(tiny):
    x = _inputs()
    dropped = tiny({"rgb": x["rgb"], "depth": x["depth"]})
    zero_filled = tiny(
        {"rgb": x["rgb"], "depth": x["depth"], "lidar": torch.zeros_like(x["lidar"])}
    )
    assert not torch.allclose(dropped, zero_filled, atol=1e-4)


def test_fusion_is_mean_over_present(tiny):
    x = _inputs()
    f = tiny.forward_features({"rgb": x["rgb"], "event": x["event"]})
    alone = [tiny.forward_features({m: x[m]}).fused for m in ("rgb", "event")]
    for stage, fused in enumerate(f.fused):
        torch.testing.assert_close(
            fused, (alone[0][stage] + alone[1][stage]) / 2, atol=1e-5, rtol=1e-4
        )
        torch.testing.assert_close(
            f.per_modality[stage][:, 0], alone[0][stage], atol=1e-5, rtol=1e-4
        )


def test_dict_order_does_not_matter(tiny):
    x = _inputs()
    forward = tiny({m: x[m] for m in MODALITIES})
    backward = tiny({m: x[m] for m in reversed(MODALITIES)})
    assert torch.equal(forward, backward)


def test_mixed_batch_equals_per_sample(tiny):
    x = _inputs(b=3)
    present = torch.tensor([[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    out = tiny(x, present)
    for b in range(3):
        mods = [m for j, m in enumerate(MODALITIES) if present[b, j]]
        single = tiny({m: x[m][b : b + 1] for m in mods})
        torch.testing.assert_close(out[b : b + 1], single, atol=1e-5, rtol=1e-4)
    feats = tiny.forward_features(x, present)
    assert feats.per_modality[0][0, 1].abs().sum() == 0  # absent entries stay empty


def test_absent_content_is_ignored(tiny):
    """Whatever a masked-out entry holds never reaches the output."""
    x = _inputs(b=2)
    present = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 1]], dtype=torch.bool)
    y = {m: v.clone() for m, v in x.items()}
    y["event"][0] = 1e3
    y["depth"][1] = -1e3
    assert torch.equal(tiny(x, present), tiny(y, present))


def test_per_modality_norm_differs_by_modality():
    torch.manual_seed(0)
    model = create_model("anyseg_tiny", num_classes=3, norm="per_modality").eval()
    norm = model.encoder.norm4
    assert norm.weight.shape == (4, 128)
    x = _inputs(b=1)
    before = model({"lidar": x["rgb"]})
    with torch.no_grad():
        norm.weight[MODALITIES.index("lidar")] *= 3.0
    assert torch.allclose(model({"rgb": x["rgb"]}), model({"rgb": x["rgb"]}))
    assert not torch.allclose(before, model({"lidar": x["rgb"]}))


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({}, "empty input"),
        ({"radar": torch.zeros(1, 3, 8, 8)}, "not known"),
        ({"rgb": torch.zeros(1, 1, 8, 8)}, r"shape \(B, 3, H, W\)"),
        ({"rgb": torch.zeros(3, 8, 8)}, r"shape \(B, 3, H, W\)"),
        ({"rgb": torch.zeros(1, 3, 8, 8, dtype=torch.uint8)}, "float tensor"),
        ({"rgb": torch.zeros(1, 3, 8, 8), "depth": torch.zeros(1, 3, 16, 8)}, "differs"),
    ],
)
def test_bad_inputs_name_the_problem(tiny, inputs, message):
    with pytest.raises(ValueError, match=message):
        tiny(inputs)


def test_bad_presence_masks(tiny):
    x = _inputs(b=2, mods=("rgb", "depth"))
    with pytest.raises(ValueError, match="present must be bool"):
        tiny(x, torch.ones(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least one present"):
        tiny(x, torch.tensor([[True, False], [False, False]]))


def test_model_restricted_to_its_modalities():
    model = create_model("anyseg_tiny", num_classes=3, modalities=("event", "rgb"))
    assert model.modalities == ("rgb", "event")
    with pytest.raises(ValueError, match="not known to this model"):
        model({"lidar": torch.zeros(1, 3, 32, 32)})


def test_registry():
    assert {"anyseg_tiny", "anyseg_b0", "anyseg_b1", "anyseg_b2"} <= set(list_models())
    with pytest.raises(ValueError, match="valid: .*anyseg_b0"):
        create_model("segformer_b9", num_classes=3)
    with pytest.raises(ValueError, match="unknown norm"):
        create_model("anyseg_tiny", num_classes=3, norm="batch")
    # Sizes flow forward: the head is sized from the encoder, the width from the variant.
    b2 = create_model("anyseg_b2", num_classes=3)
    assert b2.encoder.out_channels == (64, 128, 320, 512)
    assert b2.decode_head.classifier.in_channels == 768
    assert create_model("anyseg_tiny", 3, decoder_dim=48).decode_head.classifier.in_channels == 48


def test_b1_and_b2_forward_on_cpu():
    for name in ("anyseg_b1", "anyseg_b2"):
        model = create_model(name, num_classes=4).eval()
        with torch.no_grad():
            assert model(
                {"rgb": torch.randn(1, 3, 32, 32), "lidar": torch.randn(1, 3, 32, 32)}
            ).shape == (1, 4, 32, 32)
