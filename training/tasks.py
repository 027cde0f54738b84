"""Training tasks: a module whose forward returns a dict of losses (timm's distillation-task
pattern). The loop stays generic; every term is logged; DDP wraps the task, whose only
parameters are the trained model's. The frozen teacher is NOT a submodule: its outputs come in
as arguments, computed under no_grad outside DDP.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from anyseg_model.model import AnySegModel, Features, frozen_bn_stats

from .losses import cmd_loss, mad_loss, ohem_cross_entropy, pairwise_ummkd, umd_loss


def upsample(logits: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


class TeacherTask(nn.Module):
    """Parallel Multimodal Learning: all (available) modalities, mean fusion, OHEM-CE only."""

    def __init__(self, model: AnySegModel, loss_cfg: Any) -> None:
        super().__init__()
        self.model = model
        self.cfg = loss_cfg

    def forward(
        self, inputs: Mapping[str, Tensor], present: Tensor, label: Tensor
    ) -> dict[str, Tensor]:
        logits = upsample(
            self.model.decode(self.model.forward_features(inputs, present)), label.shape[1:]
        )
        c = self.cfg
        sup = ohem_cross_entropy(
            logits, label, c.ohem_thresh, c.ohem_min_kept, per_sample=c.ohem_per_sample
        )
        return {"loss": sup, "sup": sup}


@torch.no_grad()
def teacher_outputs(
    teacher: AnySegModel, inputs: Mapping[str, Tensor], available: Tensor
) -> tuple[Features, Tensor]:
    """The frozen teacher on every available modality: features and logits at 1/4."""
    feats = teacher.forward_features(inputs, available)
    return feats, teacher.decode(feats)


def per_modality_logits(model: AnySegModel, feats: Features) -> Tensor:
    """Each present modality's own prediction, (B, M, K, h, w): the head on that stream alone
    (what the fused path gives when the modality is the only one present). The extra head pass
    runs with the head's BatchNorm statistics frozen, so only the main fused pass updates them
    (one update per step, from the features the model is evaluated on)."""
    pairs = feats.present.nonzero()  # (P, 2) sample, modality
    stages = [f[pairs[:, 0], pairs[:, 1]] for f in feats.per_modality]  # per stage (P, C, h, w)
    with frozen_bn_stats(model.decode_head):
        logits = model.forward_head(stages, pairs.new_ones(len(pairs)))  # (P, K, h, w)
    b, m = feats.present.shape
    full = logits.new_zeros((b, m) + logits.shape[1:])
    full[pairs[:, 0], pairs[:, 1]] = logits
    return full


class StudentTask(nn.Module):
    """Anymodal student: L = L_sup + mad*MAD + umd*UMD + cmd*CMD (+ ummkd*UMMKD).

    The student sees the dropout subset (``present``); the teacher's outputs (all modalities) are
    passed in. Weights of 0 skip a term entirely (no compute). Prediction-level terms run at the
    decoder's 1/4 resolution; OHEM-CE at the label's.
    """

    def __init__(self, model: AnySegModel, loss_cfg: Any) -> None:
        super().__init__()
        self.model = model
        self.cfg = loss_cfg

    def forward(
        self,
        inputs: Mapping[str, Tensor],
        present: Tensor,
        label: Tensor,
        t_feats: Features | None = None,
        t_logits: Tensor | None = None,
    ) -> dict[str, Tensor]:
        c = self.cfg
        feats = self.model.forward_features(inputs, present)
        logits4 = self.model.decode(feats)  # (B, K, H/4, W/4)
        sup = ohem_cross_entropy(
            upsample(logits4, label.shape[1:]),
            label,
            c.ohem_thresh,
            c.ohem_min_kept,
            per_sample=c.ohem_per_sample,
        )
        out = {"sup": sup}
        total = sup
        needs_teacher = c.mad or c.umd or c.cmd
        if needs_teacher and (t_feats is None or t_logits is None):
            raise ValueError("MAD/UMD/CMD weights are set but no teacher outputs were given")
        if c.mad:
            out["mad"] = mad_loss(logits4, t_logits, c.mad_temperature)
            total = total + c.mad * out["mad"]
        if c.umd:
            out["umd"] = umd_loss(feats, t_feats, c.umd_tau, c.umd_form)
            total = total + c.umd * out["umd"]
        if c.cmd:
            out["cmd"] = cmd_loss(feats, t_feats, c.cmd_form)
            total = total + c.cmd * out["cmd"]
        if c.ummkd:
            lab4 = F.interpolate(label[:, None].float(), size=logits4.shape[2:], mode="nearest")[
                :, 0
            ].long()
            per_mod = per_modality_logits(self.model, feats)
            out["ummkd"] = pairwise_ummkd(per_mod, feats.present, lab4, c.ummkd_temperature)
            total = total + c.ummkd * out["ummkd"]
        out["loss"] = total
        return out


def expand_state_for(target: AnySegModel, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A state dict of one model adapted to ``target``'s layout: a shared norm (C,) becomes
    per-modality (M, C) by copying, one BatchNorm's statistics become per-subset-size ones
    (S, C) by copying (and back by averaging), so a shared-norm, mean-fusion teacher can
    initialise a UMMKD, per-size or gated student. Gate parameters the teacher lacks are left
    to the target's initialisation (zeros: the gate starts as the mean)."""
    own = target.state_dict()
    out = {}
    for k, v in state.items():
        if k in own and own[k].shape != v.shape and own[k].shape[1:] == v.shape:
            v = v.expand_as(own[k]).clone()
        elif k in own and own[k].shape != v.shape and v.shape[1:] == own[k].shape:
            # per-modality / per-size -> shared: the average (counters: the largest)
            v = v.max() if not v.is_floating_point() else v.mean(0)
        out[k] = v
    return out


def init_from(target: AnySegModel, state: Mapping[str, Tensor]) -> list[str]:
    """Load ``state`` (e.g. the teacher's) into ``target`` through :func:`expand_state_for`;
    returns what does not fit (missing or unexpected keys other than the gates' own)."""
    own = target.state_dict()
    state = expand_state_for(target, state)
    wrong = [
        f"{k}: {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if wrong:
        return wrong
    missing, unexpected = target.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fusion_gates.")]
    unexpected = [k for k in unexpected if not k.startswith("fusion_gates.")]
    return [f"missing {k}" for k in missing] + [f"unexpected {k}" for k in unexpected]
