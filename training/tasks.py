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

from anyseg_model.model import AnySegModel, Features

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
            self.model.forward_head(self.model.forward_features(inputs, present).fused),
            label.shape[1:],
        )
        sup = ohem_cross_entropy(logits, label, self.cfg.ohem_thresh, self.cfg.ohem_min_kept)
        return {"loss": sup, "sup": sup}


@torch.no_grad()
def teacher_outputs(
    teacher: AnySegModel, inputs: Mapping[str, Tensor], available: Tensor
) -> tuple[Features, Tensor]:
    """The frozen teacher on every available modality: features and logits at 1/4."""
    feats = teacher.forward_features(inputs, available)
    return feats, teacher.forward_head(feats.fused)


def per_modality_logits(model: AnySegModel, feats: Features) -> Tensor:
    """Each present modality's own prediction, (B, M, K, h, w): the head on that stream alone
    (what the fused path gives when the modality is the only one present)."""
    pairs = feats.present.nonzero()  # (P, 2) sample, modality
    stages = [f[pairs[:, 0], pairs[:, 1]] for f in feats.per_modality]  # per stage (P, C, h, w)
    logits = model.forward_head(stages)  # (P, K, h, w)
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
        logits4 = self.model.forward_head(feats.fused)  # (B, K, H/4, W/4)
        sup = ohem_cross_entropy(
            upsample(logits4, label.shape[1:]), label, c.ohem_thresh, c.ohem_min_kept
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
            out["umd"] = umd_loss(feats, t_feats, c.umd_tau)
            total = total + c.umd * out["umd"]
        if c.cmd:
            out["cmd"] = cmd_loss(feats, t_feats)
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
    """A state dict of one model adapted to ``target``'s norm layout: shared norm (C,) ->
    per-modality (M, C) by copying, so a shared-norm teacher can initialise a UMMKD student."""
    own = target.state_dict()
    out = {}
    for k, v in state.items():
        if (
            k in own
            and own[k].shape != v.shape
            and own[k].ndim == 2
            and own[k].shape[1:] == v.shape
        ):
            v = v.expand_as(own[k]).clone()
        elif k in own and own[k].shape != v.shape and v.ndim == 2 and v.shape[1:] == own[k].shape:
            v = v.mean(0)  # per-modality -> shared: the average affine
        out[k] = v
    return out
