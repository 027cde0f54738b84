"""Losses on known values: OHEM-CE, MAD, UMD, CMD, UMMKD (training/losses.py)."""

import math

import pytest
import torch
import torch.nn.functional as F

from anyseg_model.model import Features
from training.losses import (
    channel_kl,
    class_conditional_probs,
    cmd_loss,
    correspondence,
    height_kl,
    mad_loss,
    ohem_cross_entropy,
    pairwise_ummkd,
    umd_loss,
    ummkd_loss,
)


def _features(mods, present, stages, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    b, m = present.shape
    per = []
    for c, h, w in stages:
        x = torch.randn(b, m, c, h, w, generator=g) * present[:, :, None, None, None]
        per.append(x.requires_grad_(requires_grad))
    fused = [p.sum(1) / present.sum(1).view(b, 1, 1, 1) for p in per]
    return Features(tuple(mods), present, per, fused)


STAGES = [(4, 6, 5), (6, 3, 3)]


# ---------------------------------------------------------------- OHEM
def test_ohem_keeps_only_hard_pixels_when_enough():
    # 2 classes; logits chosen so per-pixel CE is known: p(true) = sigmoid(d).
    d = torch.tensor([4.0, 4.0, -1.0, -2.0])  # CE = log(1+e^-d)
    logits = torch.stack([d, torch.zeros(4)], 0)[None, :, None, :]  # (1, 2, 1, 4), class 0 true
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    ce = F.softplus(-d)
    hard = ce[ce > -math.log(0.7)]
    assert hard.numel() == 2
    got = ohem_cross_entropy(logits, target, thresh=0.7, min_kept_frac=0.25)
    assert torch.allclose(got, hard.mean())


def test_ohem_falls_back_to_top_k_and_skips_ignored():
    d = torch.tensor([5.0, 4.0, 3.0, 6.0, -9.0, -9.0, 2.5, 7.0])
    logits = torch.stack([d, torch.zeros(8)], 0)[None, :, None, :]
    target = torch.zeros(1, 1, 8, dtype=torch.long)
    target[0, 0, 4:6] = 255  # the two hardest pixels are ignored: must not be picked
    ce = F.softplus(-d)
    valid = ce[[0, 1, 2, 3, 6, 7]]
    # every valid pixel is easy (p > 0.7): fall back to the hardest ceil? floor(6 * 0.5) = 3
    expected = valid.topk(3).values.mean()
    got = ohem_cross_entropy(logits, target, thresh=0.7, min_kept_frac=0.5)
    assert torch.allclose(got, expected)


def test_ohem_all_ignored_is_zero_with_graph():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    target = torch.full((1, 2, 2), 255, dtype=torch.long)
    loss = ohem_cross_entropy(logits, target)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None


# ---------------------------------------------------------------- MAD
def test_mad_zero_exactly_when_equal_and_known_value():
    t = torch.randn(2, 5, 3, 4)
    assert mad_loss(t.clone(), t).item() == 0.0
    # shifting all logits by a constant leaves the distribution unchanged
    assert mad_loss(t + 3.0, t).item() == pytest.approx(0.0, abs=1e-6)
    # two classes, one pixel: KL(P_T || P_S) by hand
    s = torch.tensor([0.0, 0.0]).view(1, 2, 1, 1)
    te = torch.tensor([math.log(3.0), 0.0]).view(1, 2, 1, 1)  # P_T = (3/4, 1/4)
    pt, ps = torch.tensor([0.75, 0.25]), torch.tensor([0.5, 0.5])
    expected = (pt * (pt / ps).log()).sum()
    assert mad_loss(s, te).item() == pytest.approx(expected.item(), rel=1e-6)
    # direction matters: KL(P_S || P_T) differs
    assert mad_loss(te, s).item() != pytest.approx(expected.item(), rel=1e-3)


def test_mad_teacher_gets_no_gradient():
    s = torch.randn(1, 4, 2, 2, requires_grad=True)
    t = torch.randn(1, 4, 2, 2, requires_grad=True)
    mad_loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


# ---------------------------------------------------------------- UMD
def test_channel_kl_known_value_and_zero():
    a = torch.randn(3, 4, 5, 5)
    assert torch.equal(channel_kl(a, a.clone()), torch.zeros(3))
    s = torch.zeros(1, 1, 1, 2)
    t = torch.tensor([math.log(3.0), 0.0]).view(1, 1, 1, 2)
    pt = torch.tensor([0.75, 0.25])
    assert channel_kl(s, t).item() == pytest.approx((pt * (pt / 0.5).log()).sum().item(), rel=1e-6)


def test_umd_pairs_by_modality_name_not_position():
    present = torch.tensor([[True, True, False], [True, False, True]])
    teacher = _features(
        ("rgb", "depth", "lidar"), torch.ones(2, 3, dtype=torch.bool), STAGES, seed=1
    )
    student = _features(("rgb", "depth", "lidar"), present, STAGES, seed=2)
    ref = umd_loss(student, teacher)
    # Same data, teacher's modality axis permuted and relabelled: nothing may change.
    perm = [2, 0, 1]
    t_perm = Features(
        tuple(teacher.modalities[i] for i in perm),
        teacher.present[:, perm],
        [f[:, perm] for f in teacher.per_modality],
        teacher.fused,
    )
    assert torch.allclose(umd_loss(student, t_perm), ref)
    # Student copying the teacher on its present streams -> exactly zero.
    copy = [
        torch.where(present[:, :, None, None, None], t, s)
        for t, s in zip(teacher.per_modality, student.per_modality, strict=True)
    ]
    st = Features(student.modalities, present, copy, student.fused)
    assert umd_loss(st, teacher).item() == 0.0
    # Mis-pairing by position (teacher streams in another order under the same names) changes it.
    t_wrong = Features(
        teacher.modalities,
        teacher.present,
        [f[:, perm] for f in teacher.per_modality],
        teacher.fused,
    )
    assert not torch.allclose(umd_loss(student, t_wrong), ref)


def test_umd_absent_streams_do_not_count_and_value_is_mean_over_present():
    present = torch.tensor([[True, False], [True, True]])
    teacher = _features(("rgb", "lidar"), torch.ones(2, 2, dtype=torch.bool), STAGES, seed=3)
    student = _features(("rgb", "lidar"), present, STAGES, seed=4)
    per_sample = [0.0, 0.0]
    for s, t in zip(student.per_modality, teacher.per_modality, strict=True):
        for b in range(2):
            for m in range(2):
                if present[b, m]:
                    per_sample[b] += channel_kl(s[b : b + 1, m], t[b : b + 1, m]).item()
    # sample 0: 1 modality x 2 stages; sample 1: 2 modalities x 2 stages
    expected = (per_sample[0] / 2 + per_sample[1] / 4) / 2
    assert umd_loss(student, teacher).item() == pytest.approx(expected, rel=1e-5)
    # garbage in an absent slot changes nothing
    noisy = [f.clone() for f in student.per_modality]
    for f in noisy:
        f[0, 1] = 1e3
    assert umd_loss(
        Features(student.modalities, present, noisy, student.fused), teacher
    ).item() == pytest.approx(expected, rel=1e-5)


def test_umd_permuting_the_student_present_set_changes_nothing():
    teacher = _features(
        ("rgb", "depth", "event"), torch.ones(1, 3, dtype=torch.bool), STAGES, seed=5
    )
    student = _features(
        ("rgb", "depth", "event"), torch.tensor([[True, False, True]]), STAGES, seed=6
    )
    perm = [2, 1, 0]
    s_perm = Features(
        tuple(student.modalities[i] for i in perm),
        student.present[:, perm],
        [f[:, perm] for f in student.per_modality],
        student.fused,
    )
    assert torch.allclose(umd_loss(s_perm, teacher), umd_loss(student, teacher))


def test_umd_teacher_no_grad_and_missing_modality_error():
    teacher = _features(
        ("rgb", "depth"), torch.ones(1, 2, dtype=torch.bool), STAGES, seed=7, requires_grad=True
    )
    student = _features(
        ("rgb", "depth"), torch.ones(1, 2, dtype=torch.bool), STAGES, seed=8, requires_grad=True
    )
    umd_loss(student, teacher).backward()
    assert all(t.grad is None for t in teacher.per_modality)
    assert all(s.grad is not None for s in student.per_modality)
    other = _features(("rgb", "event"), torch.ones(1, 2, dtype=torch.bool), STAGES)
    with pytest.raises(ValueError, match="depth"):
        umd_loss(student, other)


# ---------------------------------------------------------------- CMD
def test_correspondence_known_values():
    x = torch.zeros(1, 2, 2, 1, 2)
    x[0, 0, 0, 0] = torch.tensor([1.0, 0.0])
    x[0, 1, 0, 0] = torch.tensor([1.0, 0.0])  # channel 0: cos = 1
    x[0, 0, 1, 0] = torch.tensor([1.0, 0.0])
    x[0, 1, 1, 0] = torch.tensor([0.0, 1.0])  # channel 1: cos = 0
    c = correspondence(x, torch.ones(1, 2, dtype=torch.bool))
    assert c[0, 0, 1].item() == pytest.approx(0.5)
    assert c[0, 1, 0].item() == pytest.approx(0.5)
    assert c[0, 0, 0].item() == pytest.approx(1.0)


def test_cmd_zero_for_one_modality_and_symmetric_and_known():
    teacher = _features(
        ("rgb", "depth", "lidar"), torch.ones(3, 3, dtype=torch.bool), STAGES, seed=9
    )
    single = torch.tensor([[True, False, False], [False, True, False], [False, False, True]])
    student = _features(("rgb", "depth", "lidar"), single, STAGES, seed=10)
    assert cmd_loss(student, teacher).item() == 0.0
    present = torch.tensor([[True, True, False], [True, True, True], [False, True, True]])
    student = _features(("rgb", "depth", "lidar"), present, STAGES, seed=11)
    got = cmd_loss(student, teacher)
    # by hand: per sample the mean over present pairs p<q of (c_s - c_t)^2, summed over stages
    expected = 0.0
    for s, t in zip(student.per_modality, teacher.per_modality, strict=True):
        for b in range(3):
            idx = present[b].nonzero().flatten().tolist()
            sq = []
            for i, p in enumerate(idx):
                for q in idx[i + 1 :]:
                    cs = F.cosine_similarity(s[b, p].flatten(1), s[b, q].flatten(1), dim=1).mean()
                    ct = F.cosine_similarity(t[b, p].flatten(1), t[b, q].flatten(1), dim=1).mean()
                    sq.append((cs - ct) ** 2)
            expected += torch.stack(sq).mean().item()
    assert got.item() == pytest.approx(expected / 3, rel=1e-4)
    # Swapping modalities (relabelled) in both: pairs are unordered, the value is the same.
    perm = [1, 0, 2]

    def sw(f):
        return Features(
            tuple(f.modalities[i] for i in perm),
            f.present[:, perm],
            [x[:, perm] for x in f.per_modality],
            f.fused,
        )

    assert cmd_loss(sw(student), sw(teacher)).item() == pytest.approx(got.item(), rel=1e-5)


def test_cmd_no_state_between_calls_and_teacher_no_grad():
    teacher = _features(
        ("rgb", "depth"), torch.ones(2, 2, dtype=torch.bool), STAGES, seed=12, requires_grad=True
    )
    student = _features(
        ("rgb", "depth"), torch.ones(2, 2, dtype=torch.bool), STAGES, seed=13, requires_grad=True
    )
    a = cmd_loss(student, teacher)
    other = _features(("rgb", "depth"), torch.ones(2, 2, dtype=torch.bool), STAGES, seed=14)
    cmd_loss(other, teacher)
    assert cmd_loss(student, teacher).item() == a.item()
    a.backward()
    assert all(t.grad is None for t in teacher.per_modality)
    assert cmd_loss(teacher, teacher).item() == pytest.approx(0.0, abs=1e-12)


def _reference_cmd(student, teacher, present):
    """The reference code's CMD written out per sample (its matrices with diagonal 1, cosines of
    the student's log_softmax and the teacher's softmax over H, nn.MSELoss over the matrix),
    without its accumulation across samples."""
    b = present.shape[0]
    total = 0.0
    for n in range(b):
        idx = present[n].nonzero().flatten().tolist()
        for s, t in zip(student.per_modality, teacher.per_modality, strict=True):
            fs = [torch.log_softmax(s[n, k], dim=1) for k in idx]
            ft = [torch.softmax(t[n, k], dim=1) for k in idx]
            mats = []
            for group in (fs, ft):
                c = torch.ones(len(idx), len(idx))
                for i in range(len(idx)):
                    for j in range(len(idx)):
                        if i != j:
                            c[i, j] = F.cosine_similarity(
                                group[i].flatten(1), group[j].flatten(1), dim=1
                            ).mean()
                mats.append(c)
            total += F.mse_loss(mats[0], mats[1]).item()
    return total / b


def test_cmd_reference_form_matches_the_reference_algorithm():
    teacher = _features(
        ("rgb", "depth", "lidar"), torch.ones(3, 3, dtype=torch.bool), STAGES, seed=15
    )
    present = torch.tensor([[True, False, False], [True, True, True], [False, True, True]])
    student = _features(("rgb", "depth", "lidar"), present, STAGES, seed=16)
    got = cmd_loss(student, teacher, form="reference").item()
    assert got == pytest.approx(_reference_cmd(student, teacher, present), rel=1e-4)
    assert got > 0
    # The reference compares cosines of log-probabilities with cosines of probabilities, so a
    # student identical to the teacher does NOT score 0 (the pairs form does).
    same = Features(teacher.modalities, present, teacher.per_modality, teacher.fused)
    assert cmd_loss(same, teacher, form="reference").item() > 1e-3
    assert cmd_loss(same, teacher, form="pairs").item() == pytest.approx(0.0, abs=1e-10)
    with pytest.raises(ValueError, match="unknown CMD form"):
        cmd_loss(student, teacher, form="kl")


def test_umd_reference_form_sums_height_kl_over_stages_and_present_streams():
    present = torch.tensor([[True, False], [True, True]])
    teacher = _features(("rgb", "lidar"), torch.ones(2, 2, dtype=torch.bool), STAGES, seed=17)
    student = _features(("rgb", "lidar"), present, STAGES, seed=18)
    expected = 0.0
    for s, t in zip(student.per_modality, teacher.per_modality, strict=True):
        for b in range(2):
            for m in range(2):
                if present[b, m]:  # KLDivLoss(reduction='mean'): mean over all C*H*W elements
                    ls, pt = torch.log_softmax(s[b, m], dim=1), torch.softmax(t[b, m], dim=1)
                    expected += (pt * (pt.log() - ls)).mean().clamp(min=0).item()
    got = umd_loss(student, teacher, form="reference").item()
    assert got == pytest.approx(expected / 2, rel=1e-5)
    a = torch.randn(2, 3, 4, 5)
    assert torch.equal(height_kl(a, a.clone()), torch.zeros(2))


def test_per_sample_ohem_is_the_mean_of_each_samples_ohem():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 6, 6) * 3
    target = torch.randint(0, 4, (3, 6, 6))
    target[2] = 255  # a sample without labels is skipped, not averaged in as 0
    got = ohem_cross_entropy(logits, target, per_sample=True)
    each = [ohem_cross_entropy(logits[n : n + 1], target[n : n + 1]) for n in range(2)]
    assert got.item() == pytest.approx(torch.stack(each).mean().item(), rel=1e-6)
    # pooled selection differs: an easy sample cedes its share to a hard one
    easy = logits.clone()
    easy[0] = F.one_hot(target[0], 4).permute(2, 0, 1).float() * 20  # sample 0 almost perfect
    pooled = ohem_cross_entropy(easy, target)
    mean_each = ohem_cross_entropy(easy, target, per_sample=True)
    assert pooled.item() != pytest.approx(mean_each.item(), rel=1e-3)


# ---------------------------------------------------------------- UMMKD
def test_class_conditional_probs_known():
    logits = torch.zeros(1, 2, 1, 3)
    logits[0, :, 0, 0] = torch.tensor([2.0, 0.0])
    logits[0, :, 0, 1] = torch.tensor([4.0, 0.0])
    logits[0, :, 0, 2] = torch.tensor([0.0, 6.0])
    labels = torch.tensor([[[0, 0, 1]]])
    q, seen = class_conditional_probs(logits, labels, 2, temperature=2.0)
    assert seen.tolist() == [True, True]
    assert torch.allclose(q[0], F.softmax(torch.tensor([3.0, 0.0]) / 2, 0))
    assert torch.allclose(q[1], F.softmax(torch.tensor([0.0, 6.0]) / 2, 0))


def test_ummkd_symmetric_zero_and_known_value():
    a = torch.randn(1, 3, 4, 4, requires_grad=True)
    lab = torch.randint(0, 3, (1, 4, 4))
    assert ummkd_loss(a, lab, a, lab).item() == pytest.approx(0.0, abs=1e-7)
    b = torch.randn(1, 3, 4, 4)
    lab_b = torch.randint(0, 3, (1, 4, 4))
    ab, ba = ummkd_loss(a, lab, b, lab_b), ummkd_loss(b, lab_b, a, lab)
    assert ab.item() == pytest.approx(ba.item(), rel=1e-6)
    qa, sa = class_conditional_probs(a, lab, 3)
    qb, sb = class_conditional_probs(b, lab_b, 3)
    kl = lambda p, q: (p * (p / q).log()).sum(1)  # noqa: E731
    expected = (0.5 * (kl(qa, qb) + kl(qb, qa)))[sa & sb].mean()
    assert ab.item() == pytest.approx(expected.item(), rel=1e-5)
    ab.backward()
    assert a.grad is not None


def test_ummkd_ignores_255_and_unshared_classes():
    a = torch.randn(1, 3, 2, 2)
    b = torch.randn(1, 3, 2, 2)
    la = torch.tensor([[[0, 0], [255, 255]]])
    lb = torch.tensor([[[1, 1], [1, 1]]])
    assert ummkd_loss(a, la, b, lb).item() == 0.0  # no class in common


def test_pairwise_ummkd_single_modality_zero():
    logits = torch.randn(2, 3, 4, 2, 2)
    labels = torch.randint(0, 4, (2, 2, 2))
    one = torch.tensor([[True, False, False], [False, False, True]])
    assert pairwise_ummkd(logits, one, labels).item() == 0.0
    two = torch.tensor([[True, True, False], [False, False, True]])
    expected = ummkd_loss(logits[0:1, 0], labels[0:1], logits[0:1, 1], labels[0:1])
    assert pairwise_ummkd(logits, two, labels).item() == pytest.approx(expected.item(), rel=1e-6)
