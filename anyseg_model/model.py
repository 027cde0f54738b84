"""AnySegModel: one shared MiT encoder, per-stage fusion over present modalities, MLP head.

Inputs are a dict ``{modality: (B, 3, H, W)}`` holding the present modalities only. A batch in
which samples have different modality sets passes a presence mask ``present`` of shape
(B, M) over the given modalities in canonical order; entries where it is False are never run
through the encoder and never enter the fusion (absent is not zero-filled).

Fusion (``fusion=``): ``mean``, the parameter-free mean over present streams (AnySeg), or
``gated``, a per-pixel softmax over the PRESENT streams of small learned scores (absent streams
get no weight at all), which starts as the mean. Head normalisation (``head_norm=``): ``batch``
(one BatchNorm) or ``per_size`` (BatchNorm statistics kept per number of present modalities).
Both are plain tensor ops in evaluation mode (no data-dependent Python branches), so the model
stays exportable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoders.mit import MixVisionTransformer
from .modalities import MODALITIES, canonical

NORMS = ("shared", "per_modality")
FUSIONS = ("mean", "gated")
HEAD_NORMS = ("batch", "per_size")


@dataclass
class Features:
    """What the encoder saw, per stage; the distillation losses read it.

    modalities: the modalities given, canonical order (M of them).
    present: (B, M) bool presence mask.
    per_modality: per stage, (B, M, C_s, H_s, W_s); entries of absent modalities are zeros.
    fused: per stage, (B, C_s, H_s, W_s), the fusion over present modalities.
    """

    modalities: tuple[str, ...]
    present: Tensor
    per_modality: list[Tensor]
    fused: list[Tensor]


class SubsetSizeBatchNorm2d(nn.Module):
    """BatchNorm whose statistics are kept per subset size (1..S present modalities).

    One affine pair, S sets of running statistics. Training normalises each sample with the
    batch statistics of the samples of its own size and updates that size's running statistics;
    evaluation gathers each sample's running statistics by its size (plain tensor ops). Setting
    ``track_running_stats = False`` (as :func:`frozen_bn_stats` does) leaves the statistics alone.
    """

    def __init__(
        self, num_features: int, sizes: int, eps: float = 1e-5, momentum: float = 0.1
    ) -> None:
        super().__init__()
        self.num_features, self.sizes, self.eps, self.momentum = num_features, sizes, eps, momentum
        self.track_running_stats = True
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(sizes, num_features))
        self.register_buffer("running_var", torch.ones(sizes, num_features))
        self.register_buffer("num_batches_tracked", torch.zeros(sizes, dtype=torch.long))

    def forward(self, x: Tensor, count: Tensor) -> Tensor:
        idx = (count.to(torch.long) - 1).clamp(0, self.sizes - 1)  # (B,)
        shape = (-1, self.num_features, 1, 1)
        if not self.training:
            mean, var = self.running_mean[idx], self.running_var[idx]  # (B, C)
            out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
            return out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        out = torch.zeros_like(x)
        for k in idx.unique().tolist():  # training only: groups by subset size
            rows = (idx == k).nonzero().flatten()
            xs = x[rows].float()
            mean = xs.mean((0, 2, 3))
            var = xs.var((0, 2, 3), unbiased=False)
            normed = (xs - mean.view(1, -1, 1, 1)) * torch.rsqrt(var.view(1, -1, 1, 1) + self.eps)
            out = out.index_copy(0, rows, normed.to(x.dtype))
            if self.track_running_stats:
                n = xs.numel() / self.num_features
                with torch.no_grad():
                    m = self.momentum
                    self.running_mean[k].mul_(1 - m).add_(m * mean)
                    self.running_var[k].mul_(1 - m).add_(m * var * n / max(n - 1, 1))
                    self.num_batches_tracked[k] += 1
        return out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


@contextmanager
def frozen_bn_stats(module: nn.Module) -> Iterator[None]:
    """Run ``module`` in training mode (batch statistics) without touching any BatchNorm's
    running statistics or counters: for extra passes such as UMMKD's per-modality heads."""
    bns = [m for m in module.modules() if isinstance(m, (nn.BatchNorm2d, SubsetSizeBatchNorm2d))]
    before = [m.track_running_stats for m in bns]
    for m in bns:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m, t in zip(bns, before, strict=True):
            m.track_running_stats = t


class SegFormerHead(nn.Module):
    """All-MLP decoder: per-stage projection to E, upsample to 1/4, concat, fuse, classify.

    ``sizes`` > 0 replaces the fuse BatchNorm by :class:`SubsetSizeBatchNorm2d` (statistics per
    number of present modalities); then ``forward`` needs ``count``.
    """

    def __init__(
        self,
        in_channels: Iterable[int],
        embed_dim: int,
        num_classes: int,
        dropout: float = 0.1,
        sizes: int = 0,
    ) -> None:
        super().__init__()
        in_channels = tuple(in_channels)
        # A 1x1 convolution is SegFormer's per-pixel linear layer without the token reshapes.
        self.proj = nn.ModuleList(nn.Conv2d(c, embed_dim, 1) for c in in_channels)
        self.fuse = nn.Sequential(  # indices 0/1/2 keep the state-dict names of both variants
            nn.Conv2d(embed_dim * len(in_channels), embed_dim, 1, bias=False),
            SubsetSizeBatchNorm2d(embed_dim, sizes) if sizes else nn.BatchNorm2d(embed_dim),
            nn.ReLU(inplace=True),
        )
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(embed_dim, num_classes, 1)

    def forward(self, feats: list[Tensor], count: Tensor | None = None) -> Tensor:
        size = feats[0].shape[2:]
        ups = [
            F.interpolate(p(f), size=size, mode="bilinear", align_corners=False) if i else p(f)
            for i, (p, f) in enumerate(zip(self.proj, feats, strict=True))
        ]
        x = self.fuse[0](torch.cat(ups[::-1], dim=1))  # SegFormer concatenates deepest first
        if isinstance(self.fuse[1], SubsetSizeBatchNorm2d):
            if count is None:
                raise ValueError(
                    "this head keeps BatchNorm statistics per subset size (head_norm=per_size): "
                    "pass count, e.g. model.decode(features)"
                )
            x = self.fuse[1](x, count)
        else:
            x = self.fuse[1](x)
        return self.classifier(self.dropout(self.fuse[2](x)))


class PresenceGate(nn.Module):
    """Presence-aware fusion of one stage: per pixel, a softmax over the PRESENT streams of the
    scores s_m = <w_m, f_m> + b_m (one small linear score per modality). Absent streams are
    excluded from the softmax (score -inf, weight exactly 0), never zero-filled into it. Weights
    start at zero, so the gate starts as the mean over present streams."""

    def __init__(self, channels: int, num_modalities: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_modalities, channels))
        self.bias = nn.Parameter(torch.zeros(num_modalities))

    def weights(self, x: Tensor, present: Tensor, ids: Tensor) -> Tensor:
        """(B, M, h, w) fusion weights for x (B, M, C, h, w), summing to 1 over present m."""
        score = torch.einsum("bmchw,mc->bmhw", x, self.weight[ids].to(x.dtype))
        score = score + self.bias[ids].to(x.dtype).view(1, -1, 1, 1)
        score = score.masked_fill(~present[:, :, None, None], float("-inf"))
        return score.softmax(1)

    def forward(self, x: Tensor, present: Tensor, ids: Tensor) -> Tensor:
        return (self.weights(x, present, ids).unsqueeze(2) * x).sum(1)


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
        self.config: dict[str, Any] = dict(config or {})
        fusion = self.config.get("fusion", "mean")
        head_norm = self.config.get("head_norm", "batch")
        self.decode_head = SegFormerHead(
            encoder.out_channels,
            decoder_dim,
            num_classes,
            dropout,
            sizes=len(self.modalities) if head_norm == "per_size" else 0,
        )
        # Gated fusion: one small score per (stage, modality); absent for mean fusion, so mean
        # models keep their parameter names and old checkpoints load unchanged.
        self.fusion_gates = (
            nn.ModuleList(PresenceGate(c, len(self.modalities)) for c in encoder.out_channels)
            if fusion == "gated"
            else None
        )

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

        per_modality = []
        for f in stages:
            full = f.new_zeros((b, len(mods)) + f.shape[1:])  # (B, M, C, h, w)
            full[pairs[:, 0], pairs[:, 1]] = f
            per_modality.append(full)
        return Features(mods, present, per_modality, self.fuse(per_modality, present, mods))

    def fuse(
        self, per_modality: list[Tensor], present: Tensor, modalities: Iterable[str]
    ) -> list[Tensor]:
        """Per-stage fusion of (B, M, C, h, w) streams over the present ones (``present`` (B, M)
        over ``modalities``, canonical order): the mean, or the presence gate."""
        mods = canonical(modalities)
        if self.fusion_gates is None:
            count = present.sum(1).view(-1, 1, 1, 1)
            return [f.sum(1) / count.to(f.dtype) for f in per_modality]
        ids = torch.tensor([self.modalities.index(m) for m in mods], device=present.device)
        return [
            gate(f, present, ids) for gate, f in zip(self.fusion_gates, per_modality, strict=True)
        ]

    def forward_head(self, fused: list[Tensor], count: Tensor | None = None) -> Tensor:
        """Decoder logits at 1/4 of the input resolution, (B, K, H/4, W/4). ``count`` (B,): the
        number of present modalities per sample, needed by ``head_norm=per_size`` models."""
        return self.decode_head(fused, count)

    def decode(self, feats: Features) -> Tensor:
        """:meth:`forward_head` of ``feats`` (fused features and their presence counts)."""
        return self.forward_head(feats.fused, feats.present.sum(1))

    def forward(self, inputs: Mapping[str, Tensor], present: Tensor | None = None) -> Tensor:
        """Logits (B, K, H, W) at the input resolution."""
        size = next(iter(inputs.values())).shape[2:] if inputs else None
        logits = self.decode(self.forward_features(inputs, present))
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
    fusion: str = "mean",
    head_norm: str = "batch",
    decoder_dim: int | None = None,
    drop_path: float = 0.1,
    dropout: float = 0.1,
    pretrained: str | None = None,
) -> AnySegModel:
    """Build a registered variant.

    norm: 'shared' (one encoder, AnySeg) or 'per_modality' (shared kernels, modality-specific
    norms, UMMKD). fusion: 'mean' (AnySeg) or 'gated' (presence-aware per-pixel weights).
    head_norm: 'batch' or 'per_size' (head BatchNorm statistics per subset size). decoder_dim:
    the head's width E (default: the variant's). pretrained: a local SegFormer ``mit_b*.pth``;
    the load report is kept as ``model.pretrained_report``.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; valid: {list_models()}")
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {list(NORMS)}")
    if fusion not in FUSIONS:
        raise ValueError(f"unknown fusion {fusion!r}; valid: {list(FUSIONS)}")
    if head_norm not in HEAD_NORMS:
        raise ValueError(f"unknown head_norm {head_norm!r}; valid: {list(HEAD_NORMS)}")
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
        fusion=fusion,
        head_norm=head_norm,
        decoder_dim=width,
        drop_path=drop_path,
        dropout=dropout,
    )
    model = AnySegModel(encoder, num_classes, mods, width, dropout, config)
    model.pretrained_report = encoder.load_pretrained(pretrained) if pretrained else None
    return model
