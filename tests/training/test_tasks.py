"""Training tasks: which terms run, teacher outputs stay frozen, per-modality predictions, and
initialising a per-modality-norm student from a shared-norm teacher."""

import pytest
import torch

from anyseg_model import create_model
from training.config import LossConfig
from training.tasks import (
    StudentTask,
    expand_state_for,
    init_from,
    per_modality_logits,
    teacher_outputs,
)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    teacher = create_model("anyseg_tiny", 5, drop_path=0.0, dropout=0.0).eval()
    x = {m: torch.randn(3, 3, 32, 32) for m in teacher.modalities}
    label = torch.randint(0, 5, (3, 32, 32))
    present = torch.tensor(
        [[True, False, False, False], [True, True, False, True], [False, True, True, True]]
    )
    return teacher, x, label, present


def test_zero_weights_skip_terms_and_teacher_needed_otherwise(setup):
    teacher, x, label, present = setup
    student = create_model("anyseg_tiny", 5)
    off = StudentTask(student, LossConfig(mad=0, umd=0, cmd=0, ummkd=0))
    out = off(x, present, label)
    assert set(out) == {"sup", "loss"} and torch.equal(out["loss"], out["sup"])
    on = StudentTask(student, LossConfig(ummkd=0.5))
    with pytest.raises(ValueError, match="teacher"):
        on(x, present, label)
    tf, tl = teacher_outputs(teacher, x, torch.ones(3, 4, dtype=torch.bool))
    out = on(x, present, label, tf, tl)
    assert {"sup", "mad", "umd", "cmd", "ummkd", "loss"} == set(out)
    c = LossConfig(ummkd=0.5)
    total = (
        out["sup"]
        + c.mad * out["mad"]
        + c.umd * out["umd"]
        + c.cmd * out["cmd"]
        + c.ummkd * out["ummkd"]
    )
    assert torch.allclose(out["loss"], total)
    out["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert not tl.requires_grad and not any(f.requires_grad for f in tf.per_modality)


def test_student_equal_to_teacher_has_zero_distillation_on_full_set(setup):
    teacher, x, label, _ = setup
    student = create_model("anyseg_tiny", 5, drop_path=0.0, dropout=0.0)
    student.load_state_dict(teacher.state_dict())
    student.eval()
    full = torch.ones(3, 4, dtype=torch.bool)
    tf, tl = teacher_outputs(teacher, x, full)
    out = StudentTask(student, LossConfig())(x, full, label, tf, tl)
    assert out["mad"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["umd"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["cmd"].item() == pytest.approx(0.0, abs=1e-9)


def test_per_modality_logits_equal_single_modality_forward(setup):
    teacher, x, _, present = setup
    feats = teacher.forward_features(x, present)
    per = per_modality_logits(teacher, feats)  # (B, M, K, h, w)
    for b in range(3):
        for i, m in enumerate(teacher.modalities):
            if present[b, i]:
                alone = teacher.forward_head(teacher.forward_features({m: x[m][b : b + 1]}).fused)[
                    0
                ]
                assert torch.allclose(per[b, i], alone, atol=1e-5)
            else:
                assert (per[b, i] == 0).all()


def test_shared_norm_teacher_initialises_per_modality_student(setup):
    teacher, x, _, _ = setup
    student = create_model("anyseg_tiny", 5, norm="per_modality", drop_path=0.0, dropout=0.0).eval()
    missing, unexpected = student.load_state_dict(
        expand_state_for(student, teacher.state_dict()), strict=False
    )
    assert not missing and not unexpected
    assert torch.allclose(student(x), teacher(x), atol=1e-5)


@pytest.mark.parametrize("head_norm", ["batch", "per_size"])
def test_ummkd_step_updates_head_bn_statistics_once(setup, head_norm):
    """B1: the per-modality head passes must not add single-stream statistics."""
    teacher, x, label, present = setup
    kw = dict(norm="per_modality", head_norm=head_norm, drop_path=0.0, dropout=0.0)
    student = create_model("anyseg_tiny", 5, **kw).train()
    bn = student.decode_head.fuse[1]
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    tf, tl = teacher_outputs(teacher, x, torch.ones(3, 4, dtype=torch.bool))
    StudentTask(student, LossConfig(ummkd=0.5))(x, present, label, tf, tl)
    steps = bn.num_batches_tracked - before["num_batches_tracked"]
    if head_norm == "batch":
        assert int(steps) == 1
    else:  # one update per subset size in the batch (sizes 1, 3, 3), none for size 1 twice
        assert steps.tolist() == [1, 0, 1, 0]
    # the statistics are exactly those of the fused pass alone (no UMMKD)
    ref = create_model("anyseg_tiny", 5, **kw).train()
    ref.load_state_dict(student.state_dict())
    ref.decode_head.fuse[1].load_state_dict(before)
    StudentTask(ref, LossConfig(mad=0, umd=0, cmd=0, ummkd=0))(x, present, label)
    for k, v in ref.decode_head.fuse[1].state_dict().items():
        assert torch.equal(v, bn.state_dict()[k]), k


@pytest.mark.parametrize(
    "options", [{"fusion": "gated"}, {"head_norm": "per_size"}, {"norm": "per_modality"}]
)
def test_a_mean_fusion_teacher_initialises_every_student_variant(setup, options):
    teacher, x, _, present = setup
    student = create_model("anyseg_tiny", 5, drop_path=0.0, dropout=0.0, **options)
    assert init_from(student, teacher.state_dict()) == []
    student.eval()
    if options.get("head_norm") != "per_size":  # per-size starts every size at the teacher's
        torch.testing.assert_close(student(x, present), teacher(x, present), atol=1e-5, rtol=1e-4)
    else:
        torch.testing.assert_close(student(x), teacher(x), atol=1e-5, rtol=1e-4)
    other = create_model("anyseg_b0", 5)
    assert init_from(other, teacher.state_dict())  # another size does not fit
