"""Joint augmentation: geometry shared by all modalities and the label, sparse inputs stay
sparse (nearest), RGB-only photometric changes, padding 0 / 255, determinism per generator."""

import torch

from anyseg_model.preprocess import is_dense
from anyseg_model.representations import Representation
from training.data.transforms import EvalTransform, JointTransform, gaussian_blur3

MODS = ("rgb", "depth", "event", "lidar")
DENSE = {
    m: is_dense(m, r)
    for m, r in zip(MODS, ("rgb", "depth_metric", "event_frame", "lidar_projected"), strict=True)
}


def _sample(h=24, w=32):
    # Every modality carries the same spatial code (x index) so geometry can be compared; the
    # lidar input is sparse: values only on every 3rd pixel, zero elsewhere.
    xs = torch.arange(w, dtype=torch.float32).expand(h, w)
    lidar = torch.zeros(3, h, w)
    lidar[:, ::3, ::3] = 5.0 + xs[::3, ::3]
    inputs = {
        "rgb": xs.expand(3, h, w).clone() / w,
        "depth": xs.expand(3, h, w).clone(),
        "event": xs.expand(3, h, w).clone(),
        "lidar": lidar,
    }
    label = (xs.long() % 7).clone()
    return {"inputs": inputs, "label": label, "available": torch.ones(4, dtype=torch.bool)}


def test_is_dense_rules():
    assert is_dense("rgb") and is_dense("rgb", Representation("rgb"))
    assert not is_dense("depth", Representation("depth_metric"))
    assert is_dense("depth", Representation("image"))  # HHA / depth PNG
    assert not is_dense("lidar", Representation("image")) and not is_dense("event", "image")


def test_output_size_geometry_shared_and_deterministic():
    t = JointTransform((20, 28), DENSE, jitter=0.0, blur=0.0)
    s = _sample()
    for seed in range(12):
        a = t(s, torch.Generator().manual_seed(seed))
        b = t(s, torch.Generator().manual_seed(seed))
        assert torch.equal(a["label"], b["label"])
        assert a["label"].shape == (20, 28)
        for m in MODS:
            assert a["inputs"][m].shape == (3, 20, 28)
            assert torch.equal(a["inputs"][m], b["inputs"][m])
        # depth and event are nearest-resampled copies of the x code: they equal the label's
        # source x wherever the label is not padding, so the label moved with them.
        lab = a["label"]
        ok = lab != 255
        assert torch.equal((a["inputs"]["event"][0][ok].long() % 7), lab[ok])
        assert torch.equal(a["inputs"]["depth"][0][ok], a["inputs"]["event"][0][ok])


def test_sparse_lidar_never_invents_values_and_padding():
    t = JointTransform((24, 32), DENSE, jitter=0.0, blur=0.0, scale=(0.5, 0.5), hflip=0.0)
    s = _sample()
    out = t(s, torch.Generator().manual_seed(0))
    vals = set(out["inputs"]["lidar"].unique().tolist())
    allowed = {0.0} | set(s["inputs"]["lidar"].unique().tolist())
    assert vals <= allowed  # nearest: only original samples or "no return"
    # scale 0.5: the image fills the top-left quarter; the rest is padding
    assert (out["label"][12:, :] == 255).all() and (out["label"][:, 16:] == 255).all()
    assert (out["inputs"]["depth"][:, 12:, :] == 0).all()
    assert (out["label"][:12, :16] != 255).all()


def test_hflip_flips_everything():
    t = JointTransform((24, 32), DENSE, jitter=0.0, blur=0.0, scale=(1.0, 1.0), hflip=1.0)
    s = _sample()
    out = t(s, torch.Generator().manual_seed(0))
    assert torch.equal(out["label"], s["label"].flip(-1))
    for m in MODS:
        assert torch.allclose(out["inputs"][m], s["inputs"][m].flip(-1))


def test_photometric_changes_rgb_only():
    t = JointTransform((24, 32), DENSE, jitter=1.0, blur=1.0, scale=(1.0, 1.0), hflip=0.0)
    s = _sample()
    s["inputs"]["rgb"] = torch.rand(3, 24, 32)
    out = t(s, torch.Generator().manual_seed(3))
    assert not torch.allclose(out["inputs"]["rgb"], s["inputs"]["rgb"])
    for m in ("depth", "event", "lidar"):
        assert torch.equal(out["inputs"][m], s["inputs"][m])
    assert torch.equal(out["label"], s["label"])


def test_blur_known_kernel():
    x = torch.zeros(1, 5, 5)
    x[0, 2, 2] = 1.0
    y = gaussian_blur3(x, sigma=1.0)
    k = torch.exp(-torch.tensor([1.0, 0.0, 1.0]) / 2)
    k = k / k.sum()
    assert torch.allclose(y[0, 1:4, 1:4], k[:, None] * k[None, :], atol=1e-6)
    assert abs(y.sum().item() - 1.0) < 1e-6


def test_eval_transform_resizes_inputs_keeps_label():
    s = _sample()
    out = EvalTransform((12, 16), DENSE)(s)
    assert out["inputs"]["rgb"].shape == (3, 12, 16)
    assert torch.equal(out["label"], s["label"])
