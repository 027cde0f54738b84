"""AnySegModel: one shared MiT encoder, per-stage mean fusion over present modalities, MLP head.

Inputs are a dict ``{modality: (B, 3, H, W)}`` holding the present modalities only. A batch in
which samples have different modality sets passes a presence mask ``present`` of shape
(B, M) over the given modalities in canonical order; entries where it is False are never run
through the encoder and never enter the mean (absent is not zero-filled).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoders.mit import MixVisionTransformer
from .modalities import MODALITIES, canonical

NORMS = ("shared", "per_modality")


@dataclass
class Features:
    """What the encoder saw, per stage; the distillation losses read it.

    modalities: the modalities given, canonical order (M of them).
    present: (B, M) bool presence mask.
    per_modality: per stage, (B, M, C_s, H_s, W_s); entries of absent modalities are zeros.
    fused: per stage, (B, C_s, H_s, W_s), the mean over present modalities.
    """

    modalities: tuple[str, ...]
    present: Tensor
    per_modality: list[Tensor]
    fused: list[Tensor]


class SegFormerHead(nn.Module):
    """All-MLP decoder: per-stage projection to E, upsample to 1/4, concat, fuse, classify."""

    def __init__(
        self, in_channels: Iterable[int], embed_dim: int, num_classes: int, dropout: float = 0.1
    ) -> None:
        super().__init__()
        in_channels = tuple(in_channels)
        # A 1x1 convolution is SegFormer's per-pixel linear layer without the token reshapes.
        self.proj = nn.ModuleList(nn.Conv2d(c, embed_dim, 1) for c in in_channels)
        self.fuse = nn.Sequential(
            nn.Conv2d(embed_dim * len(in_channels), embed_dim, 1, bias=False),
            nn.BatchNorm2d(embed_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(embed_dim, num_classes, 1)

    def forward(self, feats: list[Tensor]) -> Tensor:
        size = feats[0].shape[2:]
        ups = [
            F.interpolate(p(f), size=size, mode="bilinear", align_corners=False) if i else p(f)
            for i, (p, f) in enumerate(zip(self.proj, feats, strict=True))
        ]
        x = self.fuse(torch.cat(ups[::-1], dim=1))  # SegFormer concatenates deepest first
        return self.classifier(self.dropout(x))


class AnySegModel(nn.Module):
    """The anymodal segmentor. Build it with :func:`anyseg_model.create_model`."""

    def __init__(
        self,
        encoder: MixVisionTransformer,
        num_classes: int,
        modalities: Iterable[str],
        decoder_dim: int,
        dropout: float = 0.1,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.modalities: tuple[str, ...] = canonical(modalities)
        if not self.modalities:
            raise ValueError("a model needs at least one modality")
        self.num_classes = num_classes
        self.encoder = encoder
        self.decode_head = SegFormerHead(encoder.out_channels, decoder_dim, num_classes, dropout)
        self.config: dict[str, Any] = dict(config or {})

    # -- input checking -------------------------------------------------------------------------
    def _check(
        self, inputs: Mapping[str, Tensor], present: Tensor | None
    ) -> tuple[tuple[str, ...], Tensor]:
        if not inputs:
            raise ValueError(f"empty input: give at least one of {list(self.modalities)}")
        unknown = sorted(set(inputs) - set(self.modalities))
        if unknown:
            raise ValueError(
                f"modality {unknown} not known to this model; it takes {list(self.modalities)}"
            )
        mods = canonical(inputs)
        ref = inputs[mods[0]]
        for m in mods:
            x = inputs[m]
            if not isinstance(x, Tensor) or not x.is_floating_point():
                raise ValueError(
                    f"{m}: expected a float tensor, got {getattr(x, 'dtype', type(x).__name__)}"
                )
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"{m}: expected shape (B, 3, H, W), got {tuple(x.shape)}")
            if x.shape != ref.shape:
                raise ValueError(
                    f"{m}: shape {tuple(x.shape)} differs from {mods[0]}'s {tuple(ref.shape)}"
                )
        b = ref.shape[0]
        if present is None:
            return mods, torch.ones(b, len(mods), dtype=torch.bool, device=ref.device)
        if present.shape != (b, len(mods)) or present.dtype != torch.bool:
            raise ValueError(
                f"present must be bool (B, M) = ({b}, {len(mods)}) over {list(mods)}, "
                f"got {present.dtype} {tuple(present.shape)}"
            )
        if not bool(present.any(1).all()):
            raise ValueError("every sample needs at least one present modality")
        return mods, present.to(ref.device)

    # -- forward passes -------------------------------------------------------------------------
    def forward_features(
        self, inputs: Mapping[str, Tensor], present: Tensor | None = None
    ) -> Features:
        """Run the shared encoder on every present (sample, modality) pair and mean-fuse."""
        mods, present = self._check(inputs, present)
        b = present.shape[0]
        x = torch.stack([inputs[m] for m in mods], dim=1)  # (B, M, 3, H, W)
        ids = torch.tensor([self.modalities.index(m) for m in mods], device=x.device)
        pairs = present.nonzero()  # (P, 2): the modality axis folded into the batch
        mod_ids = (
            ids[pairs[:, 1]]
            if self.config.get("norm") == "per_modality"
            else ids.new_zeros(len(pairs))
        )
        stages = self.encoder(x[pairs[:, 0], pairs[:, 1]], mod_ids)  # per stage (P, C, h, w)

        count = present.sum(1).to(x.dtype).view(b, 1, 1, 1)
        per_modality, fused = [], []
        for f in stages:
            full = f.new_zeros((b, len(mods)) + f.shape[1:])  # (B, M, C, h, w)
            full[pairs[:, 0], pairs[:, 1]] = f
            per_modality.append(full)
            fused.append(full.sum(1) / count)
        return Features(mods, present, per_modality, fused)

    def forward_head(self, fused: list[Tensor]) -> Tensor:
        """Decoder logits at 1/4 of the input resolution, (B, K, H/4, W/4)."""
        return self.decode_head(fused)

    def forward(self, inputs: Mapping[str, Tensor], present: Tensor | None = None) -> Tensor:
        """Logits (B, K, H, W) at the input resolution."""
        size = next(iter(inputs.values())).shape[2:] if inputs else None
        logits = self.forward_head(self.forward_features(inputs, present).fused)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------------ registry
# MiT sizes of SegFormer (B0-B2) and a tiny variant for CPU tests. Decoder widths: SegFormer's.
_MIT = dict(num_heads=(1, 2, 5, 8), sr_ratios=(8, 4, 2, 1))
_REGISTRY: dict[str, dict[str, Any]] = {
    "anyseg_tiny": dict(
        embed_dims=(16, 32, 64, 128),
        depths=(1, 1, 1, 1),
        num_heads=(1, 1, 2, 4),
        sr_ratios=(8, 4, 2, 1),
        decoder_dim=64,
    ),
    "anyseg_b0": dict(embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2), decoder_dim=256, **_MIT),
    "anyseg_b1": dict(embed_dims=(64, 128, 320, 512), depths=(2, 2, 2, 2), decoder_dim=256, **_MIT),
    "anyseg_b2": dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 6, 3), decoder_dim=768, **_MIT),
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model`."""
    return sorted(_REGISTRY)


def create_model(
    name: str,
    num_classes: int,
    modalities: Iterable[str] = MODALITIES,
    *,
    norm: str = "shared",
    decoder_dim: int | None = None,
    drop_path: float = 0.1,
    dropout: float = 0.1,
    pretrained: str | None = None,
) -> AnySegModel:
    """Build a registered variant.

    norm: 'shared' (one encoder, AnySeg) or 'per_modality' (shared kernels, modality-specific
    norms, UMMKD). decoder_dim: the head's width E (default: the variant's). pretrained: a local
    SegFormer ``mit_b*.pth``; the load report is kept as ``model.pretrained_report``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid: {list_models()}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {list(NORMS)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    spec = dict(_REGISTRY[name])
    width = decoder_dim or spec.pop("decoder_dim")
    spec.pop("decoder_dim", None)
    mods = canonical(modalities)
    encoder = MixVisionTransformer(
        **spec, drop_path=drop_path, num_modalities=len(mods) if norm == "per_modality" else 1
    )
    config = dict(
        name=name,
        num_classes=num_classes,
        modalities=list(mods),
        norm=norm,
        decoder_dim=width,
        drop_path=drop_path,
        dropout=dropout,
    )
    model = AnySegModel(encoder, num_classes, mods, width, dropout, config)
    model.pretrained_report = encoder.load_pretrained(pretrained) if pretrained else None
    return model
