"""Training losses (docs/method.md sections 3 and 5), all pure functions of their tensors.

Conventions shared by every function here:
- Teacher tensors are detached inside the function, so a caller cannot leak gradients into a
  frozen teacher by forgetting ``torch.no_grad``.
- Features come as :class:`anyseg_model.Features`; teacher and student features are paired by
  modality NAME (``Features.modalities``), never by position, so a student that saw
  ``(lidar, rgb)`` is compared with the teacher's lidar and rgb streams whatever their order.
- No state is kept between calls (the reference CMD accumulated across samples; this does not).

Choices where the reference code and the paper disagree (docs/method.md section 5):
- MAD: the reference code's direction, KL(P_T || P_S), summed over classes and averaged over
  pixels ("per-pixel" KL). The reference's ``reduction='mean'`` divides by K as well, so its
  weight 50 equals a per-pixel weight of 50/K (2.0 for DELIVER's 25 classes, 2.63 for MUSES' 19).
- UMD, two forms (``loss.umd_form``): ``channel``, channel-wise distillation (Shu et al. 2021):
  per channel a softmax over the H*W positions with temperature tau, KL(teacher || student),
  times tau^2, averaged over channels, then over the stages and the sample's present
  modalities, then over the batch; ``reference``, the public reference code's form: per stage and
  present modality a softmax over the HEIGHT axis of each (C, H, W) map, KL(teacher || student)
  averaged over the C*H*W elements, SUMMED over stages and present modalities, mean over the
  batch (its weight is 5).
- CMD, two forms (``loss.cmd_form``), both per sample with no state between samples (the
  reference accumulates features across the samples of a batch; this does not):
  ``pairs``, squared differences of the raw features' correspondences c_pq = mean_j cos(x_p[j],
  x_q[j]) averaged over the unordered present pairs p < q; ``reference``, the reference code's
  form: the student's maps pass through log_softmax and the teacher's through softmax over the
  height axis first, and the MSE runs over the full |S| x |S| matrices (diagonal 1 on both
  sides), so ``pairs`` is |S| / (|S| - 1) times a full-matrix MSE of the same correspondences.
  Summed over stages, mean over the batch.
- UMMKD: Dou et al.'s symmetric KL between class-conditional mean logits (softmax at T=2),
  averaged over the classes that occur in both label maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from anyseg_model.classes import IGNORE_INDEX
from anyseg_model.model import Features


# ------------------------------------------------------------------------------ supervised
def _ohem(loss: Tensor, thresh: float, min_kept_frac: float) -> Tensor:
    """Mean of the hard entries of a 1-D tensor of valid per-pixel losses (see below)."""
    n_min = max(1, int(loss.numel() * min_kept_frac))
    hard = loss[loss > -math.log(thresh)]
    if hard.numel() < n_min:
        hard = loss.topk(n_min).values
    return hard.mean()


def ohem_cross_entropy(
    logits: Tensor,
    target: Tensor,
    thresh: float = 0.7,
    min_kept_frac: float = 1.0 / 16,
    ignore_index: int = IGNORE_INDEX,
    per_sample: bool = False,
) -> Tensor:
    """Online hard example mining cross-entropy (the reference's supervised loss).

    logits (B, K, H, W) at the label's size, target (B, H, W) int64. Pixels whose loss exceeds
    -log(thresh) (i.e. whose true-class probability is below ``thresh``) are averaged; if fewer
    than ``min_kept_frac`` of the valid pixels qualify, the hardest that many are used instead.
    Ignored pixels never count (the reference's top-k could pick them; their loss is 0 anyway).
    A batch with no valid pixel gives a zero that still carries the graph.

    ``per_sample``: the selection runs within each sample and the samples' means are averaged
    (samples without a valid pixel skipped), so a sample with easy pixels (e.g. the full set)
    keeps its share of the loss instead of ceding it to the hard pixels of other samples.
    """
    if logits.shape[0] != target.shape[0] or logits.shape[2:] != target.shape[1:]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match"
        )
    loss = F.cross_entropy(logits.float(), target, ignore_index=ignore_index, reduction="none")
    valid = target != ignore_index
    if per_sample:
        means = [
            _ohem(loss[n][valid[n]], thresh, min_kept_frac)
            for n in range(loss.shape[0])
            if bool(valid[n].any())
        ]
        return torch.stack(means).mean() if means else logits.sum() * 0.0
    loss = loss[valid]
    if loss.numel() == 0:
        return logits.sum() * 0.0
    return _ohem(loss, thresh, min_kept_frac)


# ------------------------------------------------------------------------------ MAD
def mad_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Modality-agnostic semantic distillation: per-pixel KL(P_T || P_S), mean over pixels.

    Both (B, K, H, W) at the same size. Zero exactly when the two logit maps give the same
    distributions (KL of identical log-probabilities is computed as exp(t) * (t - t) = 0).
    With ``temperature`` T both are softened and the loss is scaled by T^2 (Hinton).
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student {tuple(student_logits.shape)} vs teacher {tuple(teacher_logits.shape)}"
        )
    t = temperature
    log_s = F.log_softmax(student_logits.float() / t, dim=1)
    log_t = F.log_softmax(teacher_logits.detach().float() / t, dim=1)
    kl = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(1)  # (B, H, W)
    return kl.mean() * (t * t)


# ------------------------------------------------------------------------------ UMD
def _pairing(student: Features, teacher: Features) -> list[tuple[int, int]]:
    """(student index, teacher index) for every student modality, by name."""
    missing = [m for m in student.modalities if m not in teacher.modalities]
    if missing:
        raise ValueError(f"teacher features lack {missing}; teacher has {list(teacher.modalities)}")
    if len(student.per_modality) != len(teacher.per_modality):
        raise ValueError(
            f"{len(student.per_modality)} student stages vs "
            f"{len(teacher.per_modality)} teacher stages"
        )
    return [(i, teacher.modalities.index(m)) for i, m in enumerate(student.modalities)]


def channel_kl(student: Tensor, teacher: Tensor, tau: float = 1.0) -> Tensor:
    """Channel-wise distillation per sample: (N, C, H, W) pairs -> (N,) losses.

    For each channel, softmax over the H*W positions (at temperature tau) turns the activation map
    into a spatial distribution; KL(teacher || student) per channel, times tau^2, mean over C.
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"student {tuple(student.shape)} vs teacher {tuple(teacher.shape)}; "
            "UMD needs equal feature shapes (same encoder size)"
        )
    n, c = student.shape[:2]
    log_s = F.log_softmax(student.float().reshape(n, c, -1) / tau, dim=2)  # (N, C, H*W)
    log_t = F.log_softmax(teacher.detach().float().reshape(n, c, -1) / tau, dim=2)
    kl = F.kl_div(log_s, log_t, reduction="none", log_target=True).sum(2)  # (N, C)
    return kl.mean(1) * (tau * tau)


def height_kl(student: Tensor, teacher: Tensor) -> Tensor:
    """The reference UMD term per sample: (N, C, H, W) pairs -> (N,) losses.

    Softmax over the HEIGHT axis of each map (the reference's ``dim=1`` of a (C, H, W) tensor),
    KL(teacher || student) averaged over the C*H*W elements (``KLDivLoss(reduction='mean')``),
    clamped at 0 as the reference does.
    """
    if student.shape != teacher.shape:
        raise ValueError(
            f"student {tuple(student.shape)} vs teacher {tuple(teacher.shape)}; "
            "UMD needs equal feature shapes (same encoder size)"
        )
    log_s = F.log_softmax(student.float(), dim=2)
    log_t = F.log_softmax(teacher.detach().float(), dim=2)
    kl = F.kl_div(log_s, log_t, reduction="none", log_target=True)
    return kl.flatten(1).mean(1).clamp(min=0)


UMD_FORMS = ("channel", "reference")
CMD_FORMS = ("pairs", "reference")


def umd_loss(
    student: Features, teacher: Features, tau: float = 1.0, form: str = "channel"
) -> Tensor:
    """Unimodal distillation: each present student stream toward the teacher's SAME modality.

    ``channel``: per sample, the channel-wise KL averaged over the 4 stages and the sample's
    present modalities; then the mean over the batch (the average keeps the weight independent
    of |S| and of the number of stages, which matters when every sample has its own subset).
    ``reference``: :func:`height_kl` SUMMED over stages and present modalities, mean over the
    batch (tau unused). Absent entries are never read.
    """
    if form not in UMD_FORMS:
        raise ValueError(f"unknown UMD form {form!r}; valid: {list(UMD_FORMS)}")
    pairs = _pairing(student, teacher)
    present = student.present  # (B, M_s)
    b = present.shape[0]
    per_sample = student.per_modality[0].new_zeros(b, dtype=torch.float32)
    for s_stage, t_stage in zip(student.per_modality, teacher.per_modality, strict=True):
        for i, j in pairs:
            rows = present[:, i].nonzero().flatten()
            if rows.numel():
                s_x, t_x = s_stage[rows, i], t_stage[rows, j]
                term = channel_kl(s_x, t_x, tau) if form == "channel" else height_kl(s_x, t_x)
                per_sample = per_sample.index_add(0, rows, term)
    if form == "reference":
        return per_sample.mean()
    count = present.sum(1).clamp(min=1).to(per_sample.dtype) * len(student.per_modality)
    return (per_sample / count).mean()


# ------------------------------------------------------------------------------ CMD
def correspondence(x: Tensor, mask: Tensor) -> Tensor:
    """Cross-modal correspondence matrices of one stage.

    x (B, M, C, H, W), mask (B, M) bool -> (B, M, M): c_pq = mean over channels j of the cosine
    between the flattened maps x_p[j] and x_q[j]. Entries involving an absent modality are 0.
    """
    b, m, c = x.shape[:3]
    flat = F.normalize(x.float().reshape(b, m, c, -1), dim=3, eps=1e-8)  # (B, M, C, H*W) unit rows
    cos = torch.einsum("bpcn,bqcn->bpqc", flat, flat).mean(3)  # (B, M, M)
    both = mask[:, :, None] & mask[:, None, :]
    return cos * both


def cmd_loss(student: Features, teacher: Features, form: str = "pairs") -> Tensor:
    """Cross-modal distillation: student and teacher correspondence matrices compared.

    ``pairs``: per stage and sample, the squared differences of c_pq (raw features) over the
    unordered pairs p < q of the student's present modalities are averaged. ``reference``: c_pq
    of the student's log_softmax and the teacher's softmax over the height axis, squared
    differences averaged over the |S| x |S| matrix (diagonals are 1 on both sides, so this is
    2 / |S|^2 times the sum over p < q). Both: summed over stages, averaged over the batch; a
    sample with one present modality contributes 0.
    """
    if form not in CMD_FORMS:
        raise ValueError(f"unknown CMD form {form!r}; valid: {list(CMD_FORMS)}")
    pairs = _pairing(student, teacher)
    s_idx = torch.tensor([i for i, _ in pairs], device=student.present.device)
    t_idx = torch.tensor([j for _, j in pairs], device=student.present.device)
    mask = student.present  # (B, M_s)
    m = mask.shape[1]
    upper = torch.triu(torch.ones(m, m, dtype=torch.bool, device=mask.device), diagonal=1)
    valid = (mask[:, :, None] & mask[:, None, :]) & upper  # (B, M, M) present pairs p < q
    if form == "pairs":
        norm = valid.sum((1, 2)).clamp(min=1).float()  # C(|S|, 2)
    else:
        norm = (mask.sum(1).float() ** 2 / 2).clamp(min=1)  # |S|^2 / 2: each pair twice
    total = mask.new_zeros((), dtype=torch.float32)
    for s_stage, t_stage in zip(student.per_modality, teacher.per_modality, strict=True):
        s_x, t_x = s_stage[:, s_idx].float(), t_stage.detach()[:, t_idx].float()
        if form == "reference":  # (B, M, C, H, W): the reference's dim=1 of (C, H, W) is H
            s_x, t_x = F.log_softmax(s_x, dim=3), F.softmax(t_x, dim=3)
        c_s = correspondence(s_x, mask)
        c_t = correspondence(t_x, mask)
        sq = ((c_s - c_t) ** 2 * valid).sum((1, 2)) / norm  # (B,)
        total = total + sq.sum()
    return total / mask.shape[0]


# ------------------------------------------------------------------------------ UMMKD
def class_conditional_probs(
    logits: Tensor,
    labels: Tensor,
    num_classes: int,
    temperature: float = 2.0,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[Tensor, Tensor]:
    """Per class k, the mean logit vector over pixels labelled k, softened: (K, K) rows, (K,) seen.

    logits (B, K, H, W) at the label's size; labels (B, H, W). Row k is softmax(mean_z / T) for
    the pixels of class k; ``seen[k]`` says whether class k had any pixel.
    """
    k = logits.shape[1]
    z = logits.float().permute(0, 2, 3, 1).reshape(-1, k)  # (N, K) one row per pixel
    y = labels.reshape(-1)
    keep = (y != ignore_index) & (y < num_classes)
    z, y = z[keep], y[keep]
    sums = z.new_zeros(num_classes, k).index_add_(0, y, z)
    counts = torch.bincount(y, minlength=num_classes).to(z.dtype)
    mean = sums / counts.clamp(min=1)[:, None]
    return F.softmax(mean / temperature, dim=1), counts > 0


def ummkd_loss(
    logits_a: Tensor,
    labels_a: Tensor,
    logits_b: Tensor,
    labels_b: Tensor,
    temperature: float = 2.0,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Dou et al. 2020 class-conditional KD between two modalities' predictions.

    Symmetric KL 0.5 * [KL(q_a||q_b) + KL(q_b||q_a)] of the softened class-conditional mean
    logits, averaged over classes present in both label maps. The two inputs need not be paired
    images (unpaired data works: only class statistics are compared). Both sides get gradients
    (mutual distillation, as in the paper); zero if no class is shared.
    """
    k = logits_a.shape[1]
    qa, seen_a = class_conditional_probs(logits_a, labels_a, k, temperature, ignore_index)
    qb, seen_b = class_conditional_probs(logits_b, labels_b, k, temperature, ignore_index)
    shared = seen_a & seen_b
    if not bool(shared.any()):
        return (logits_a.sum() + logits_b.sum()) * 0.0
    la, lb = qa.clamp_min(1e-12).log(), qb.clamp_min(1e-12).log()
    kl_ab = (qa * (la - lb)).sum(1)
    kl_ba = (qb * (lb - la)).sum(1)
    return (0.5 * (kl_ab + kl_ba))[shared].mean()


def pairwise_ummkd(
    per_modality_logits: Tensor, present: Tensor, labels: Tensor, temperature: float = 2.0
) -> Tensor:
    """UMMKD between every pair of present modalities of each sample, averaged over pairs.

    per_modality_logits (B, M, K, H, W) (each modality's own head output at the label's size),
    present (B, M), labels (B, H, W). Samples with one modality contribute nothing.
    """
    b, m = present.shape
    terms = []
    for n in range(b):
        idx = present[n].nonzero().flatten().tolist()
        for a_i, p in enumerate(idx):
            for q in idx[a_i + 1 :]:
                la, lb = per_modality_logits[n : n + 1, p], per_modality_logits[n : n + 1, q]
                terms.append(ummkd_loss(la, labels[n : n + 1], lb, labels[n : n + 1], temperature))
    if not terms:
        return per_modality_logits.sum() * 0.0
    return torch.stack(terms).mean()
