"""Loading the official SegFormer mit_b*.pth parameter layout from a local file."""

import pytest
import torch

from anyseg_model import create_model
from anyseg_model.encoders.mit import MixVisionTransformer

# A few names exactly as they stand in the official mit_b0.pth (SegFormer's MixVisionTransformer).
OFFICIAL_KEYS = [
    "patch_embed1.proj.weight",
    "patch_embed1.norm.weight",
    "block1.0.norm1.weight",
    "block1.0.attn.q.weight",
    "block1.0.attn.kv.weight",
    "block1.0.attn.sr.weight",
    "block1.0.attn.norm.weight",
    "block1.0.attn.proj.weight",
    "block1.0.mlp.fc1.weight",
    "block1.0.mlp.dwconv.dwconv.weight",
    "block1.0.mlp.fc2.weight",
    "norm1.weight",
    "block4.1.attn.kv.bias",
    "norm4.bias",
]


def _official_file(tmp_path, wrap=False):
    """An mit_b0-shaped file: encoder tensors plus the classification head the file carries."""
    torch.manual_seed(1)
    sd = MixVisionTransformer().state_dict()
    sd = {k: torch.randn_like(v) for k, v in sd.items()}
    sd["head.weight"] = torch.randn(1000, 256)
    sd["head.bias"] = torch.randn(1000)
    path = tmp_path / "mit_b0.pth"
    torch.save({"state_dict": sd} if wrap else sd, path)
    return path, sd


def test_encoder_uses_official_names():
    names = set(MixVisionTransformer().state_dict())
    assert set(OFFICIAL_KEYS) <= names


@pytest.mark.parametrize("wrap", [False, True])
def test_load_mit_b0_file(tmp_path, wrap):
    path, sd = _official_file(tmp_path, wrap)
    model = create_model("anyseg_b0", num_classes=5, pretrained=str(path))
    report = model.pretrained_report
    assert report.unexpected == ["head.bias", "head.weight"]
    assert report.missing == []
    assert torch.equal(model.encoder.block2[1].attn.q.weight, sd["block2.1.attn.q.weight"])


def test_per_modality_norms_start_from_the_shared_ones(tmp_path):
    path, sd = _official_file(tmp_path)
    model = create_model("anyseg_b0", num_classes=5, norm="per_modality", pretrained=str(path))
    w = model.encoder.norm3.weight
    assert w.shape == (4, 160)
    for m in range(4):
        assert torch.equal(w[m], sd["norm3.weight"])


def test_wrong_size_file_is_an_error(tmp_path):
    path, _ = _official_file(tmp_path)
    with pytest.raises(ValueError, match="another MiT size"):
        create_model("anyseg_b1", num_classes=5, pretrained=str(path))


def test_unrelated_file_is_an_error(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="no encoder tensor matched"):
        create_model("anyseg_b0", num_classes=5, pretrained=str(path))


def test_an_incomplete_file_is_an_error_naming_what_is_missing(tmp_path):
    path, sd = _official_file(tmp_path)
    del sd["block3.1.mlp.fc2.weight"], sd["norm4.bias"]
    torch.save(sd, path)
    with pytest.raises(ValueError, match=r"2 of \d+ encoder tensors .*block3.1.mlp.fc2.weight"):
        create_model("anyseg_b0", num_classes=5, pretrained=str(path))
    with pytest.raises(ValueError, match="does not exist"):
        create_model("anyseg_b0", num_classes=5, pretrained=str(tmp_path / "none.pth"))


def test_training_scripts_refuse_a_bad_pretrained_file_in_one_line(tmp_path):
    from types import SimpleNamespace

    from training.common import build_model
    from training.config import load_config

    cfg = load_config(None, ["model.name=anyseg_b0", f"model.pretrained={tmp_path / 'x.pth'}"])
    data = SimpleNamespace(classes=("a", "b"), modalities=("rgb",))
    with pytest.raises(SystemExit, match="^model error: .*x.pth' does not exist$"):
        build_model(cfg, data, pretrained=cfg.model.pretrained)
