"""Loop pieces: parameter groups, the LR schedule, RNG round trip, AMP choice, subset scoring
in one encoder pass, and exact --resume (teacher and student)."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from anyseg_model import all_subsets, create_model
from anyseg_model.checkpoint import read_checkpoint
from training.engine import WarmupPoly, amp_settings, param_groups, rng_state, set_rng_state
from training.subset_eval import subset_logits

SMOKE = Path(__file__).resolve().parents[2] / "training" / "configs" / "smoke.yaml"


def test_no_decay_on_1d_and_norm_params():
    model = create_model("anyseg_tiny", 5, norm="per_modality")
    decay, no_decay = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decay["params"])
    names = {id(p): n for n, p in model.named_parameters()}
    nd = [names[id(p)] for p in no_decay["params"]]
    assert any("norm" in n and "weight" in n for n in nd)  # (M, C) per-modality norm tables
    assert all(p.ndim <= 1 or "norm" in names[id(p)] for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_warmup_poly_values():
    f = WarmupPoly(total=110, warmup=10, ratio=0.1, power=0.9)
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx(0.55)
    assert f(10) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5**0.9)
    assert f(110) == 0.0
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, WarmupPoly(110, 10))
    for _ in range(10):
        opt.step()
        sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(2.0)


def test_rng_state_round_trip():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    state = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_amp_off_on_cpu():
    assert amp_settings(torch.device("cpu"), True) == (None, None)


def test_amp_on_cuda_is_bf16_without_a_scaler_where_supported(monkeypatch):
    """On by default (run.amp=true): bf16 autocast where the GPU has it, no fp16 scaler to skip
    steps; off when asked."""
    from training.config import load_config

    assert load_config(None).run.amp is True and load_config(None).optim.grad_clip == 1.0
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_settings(torch.device("cuda"), True) == (torch.bfloat16, None)
    assert amp_settings(torch.device("cuda"), False) == (None, None)


def test_subset_scoring_equals_running_the_subset():
    torch.manual_seed(0)
    model = create_model("anyseg_tiny", 4, norm="per_modality").eval()
    x = {m: torch.randn(2, 3, 32, 32) for m in model.modalities}
    feats = model.forward_features(x)
    for s in all_subsets(model.modalities):
        direct = model.forward_head(model.forward_features({m: x[m] for m in s}).fused)
        assert torch.allclose(subset_logits(model, feats, s), direct, atol=1e-5), (
            s
        )  # batched kernels: not bit-exact


def _state(path):
    d = read_checkpoint(path)
    return d["state_dict"], d["extra"]


def _same(a, b):
    sa, ea = a
    sb, eb = b
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert ea["step"] == eb["step"] and ea["epoch"] == eb["epoch"]
    for k, v in ea["optimizer"]["state"].items():
        for name, t in v.items():
            assert torch.equal(t, eb["optimizer"]["state"][k][name]), (k, name)
    assert torch.equal(ea["rng"]["torch"], eb["rng"]["torch"])


@pytest.mark.parametrize("script", ["teacher", "student"])
def test_resume_continues_exactly(tmp_path, script):
    from training import distill, train_teacher

    common = [
        "--config",
        str(SMOKE),
        f"data.cache_dir={tmp_path / 'data'}",
        "data.train_frames=8",
        "data.val_frames=2",
        "optim.epochs=2",
        "optim.batch_size=2",
    ]
    if script == "teacher":
        main, extra = train_teacher.main, []
    else:
        teacher = tmp_path / "t"
        assert train_teacher.main([*common, "--out", str(teacher), "optim.epochs=1"]) == 0
        main, extra = (
            distill.main,
            ["--teacher", str(teacher / "teacher.pt"), "student.init=scratch"],
        )
    assert main([*common, *extra, "--out", str(tmp_path / "full")]) == 0
    assert main([*common, *extra, "--out", str(tmp_path / "part"), "run.stop_after_epochs=1"]) == 0
    assert not (tmp_path / "part" / "eval.json").exists()  # paused runs leave no final files
    assert _state(tmp_path / "part" / "checkpoint.pt")[1]["epoch"] == 1
    assert main([*common, *extra, "--out", str(tmp_path / "part"), "--resume"]) == 0
    _same(_state(tmp_path / "full" / "checkpoint.pt"), _state(tmp_path / "part" / "checkpoint.pt"))
    # and a different seed really gives different weights (the comparison can fail)
    assert main([*common, *extra, "--out", str(tmp_path / "other"), "run.seed=1"]) == 0
    a, b = (
        _state(tmp_path / "full" / "checkpoint.pt")[0],
        _state(tmp_path / "other" / "checkpoint.pt")[0],
    )
    assert any(not torch.equal(a[k], b[k]) for k in a)
