"""Mix Transformer (MiT) encoder of SegFormer, shared by all modalities.

Parameter names follow the official SegFormer ``mit_b*.pth`` files (``patch_embed1.proj``,
``block1.0.attn.q``, ``norm1``, ...), so such a file loads with
:meth:`MixVisionTransformer.load_pretrained`.

Every norm layer takes the modality id of each batch element. With ``num_modalities=1`` it is an
ordinary LayerNorm; with more it keeps one affine pair per modality over shared kernels (the
UMMKD idea of Dou et al. 2020: shared convolution/attention weights, modality-specific
normalisation). LayerNorm has no running statistics, so the affine pair is what differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ModalityLayerNorm(nn.Module):
    """LayerNorm over the last dim with one (weight, bias) per modality, or one shared pair."""

    def __init__(self, dim: int, num_modalities: int = 1, eps: float = 1e-6) -> None:
        super().__init__()
        shape = (dim,) if num_modalities == 1 else (num_modalities, dim)
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))
        self.dim, self.eps = dim, eps

    def forward(self, x: Tensor, mod_ids: Tensor) -> Tensor:
        if self.weight.ndim == 1:
            return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)
        x = F.layer_norm(x, (self.dim,), None, None, self.eps)
        shape = (-1,) + (1,) * (x.ndim - 2) + (self.dim,)  # broadcast over the token axes
        return x * self.weight[mod_ids].view(shape) + self.bias[mod_ids].view(shape)


class OverlapPatchEmbed(nn.Module):
    """Strided convolution with overlapping windows, then a norm over the tokens."""

    def __init__(
        self, patch: int, stride: int, in_chans: int, dim: int, num_modalities: int
    ) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, patch, stride, padding=patch // 2)
        self.norm = ModalityLayerNorm(dim, num_modalities)

    def forward(self, x: Tensor, mod_ids: Tensor) -> tuple[Tensor, int, int]:
        x = self.proj(x)
        h, w = x.shape[2:]
        return self.norm(x.flatten(2).transpose(1, 2), mod_ids), h, w  # (N, h*w, C)


class EfficientAttention(nn.Module):
    """Multi-head self-attention whose keys/values come from a spatially reduced map (ratio sr)."""

    def __init__(
        self, dim: int, heads: int, sr: int, num_modalities: int, drop: float = 0.0
    ) -> None:
        super().__init__()
        self.heads, self.sr, self.drop = heads, sr, drop
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        if sr > 1:
            self.sr = nn.Conv2d(dim, dim, sr, sr)
            self.norm = ModalityLayerNorm(dim, num_modalities)

    def forward(self, x: Tensor, h: int, w: int, mod_ids: Tensor) -> Tensor:
        n, length, c = x.shape
        q = self.q(x).view(n, length, self.heads, c // self.heads).transpose(1, 2)
        if isinstance(self.sr, nn.Conv2d):
            x = self.sr(x.transpose(1, 2).reshape(n, c, h, w)).flatten(2).transpose(1, 2)
            x = self.norm(x, mod_ids)
        k, v = self.kv(x).view(n, -1, 2, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        drop = self.drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)  # (N, heads, L, C/heads)
        return self.proj(out.transpose(1, 2).reshape(n, length, c))


class MixFFN(nn.Module):
    """MLP with a 3x3 depth-wise convolution between the two linears (positional information)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Module()  # nested name matches the official `mlp.dwconv.dwconv`
        self.dwconv.dwconv = nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        x = self.fc1(x)
        n, _, c = x.shape
        x = self.dwconv.dwconv(x.transpose(1, 2).reshape(n, c, h, w)).flatten(2).transpose(1, 2)
        return self.fc2(F.gelu(x))


class Block(nn.Module):
    def __init__(
        self, dim: int, heads: int, mlp_ratio: float, sr: int, drop_path: float, num_modalities: int
    ) -> None:
        super().__init__()
        self.norm1 = ModalityLayerNorm(dim, num_modalities)
        self.attn = EfficientAttention(dim, heads, sr, num_modalities)
        self.norm2 = ModalityLayerNorm(dim, num_modalities)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio))
        self.drop_path = drop_path

    def _residual(self, y: Tensor) -> Tensor:
        """Stochastic depth: drop the whole branch per sample, rescale the kept ones."""
        if not self.training or self.drop_path == 0.0:
            return y
        keep = 1.0 - self.drop_path
        mask = y.new_empty((y.shape[0],) + (1,) * (y.ndim - 1)).bernoulli_(keep)
        return y * mask / keep

    def forward(self, x: Tensor, h: int, w: int, mod_ids: Tensor) -> Tensor:
        x = x + self._residual(self.attn(self.norm1(x, mod_ids), h, w, mod_ids))
        return x + self._residual(self.mlp(self.norm2(x, mod_ids), h, w))


@dataclass(frozen=True)
class LoadReport:
    """What a pretrained file did and did not provide."""

    loaded: list[str]
    missing: list[str]
    unexpected: list[str]

    def __str__(self) -> str:
        return (
            f"loaded {len(self.loaded)} tensors; missing {len(self.missing)}: {self.missing[:8]}"
            f"{' ...' if len(self.missing) > 8 else ''}; unexpected {len(self.unexpected)}: "
            f"{self.unexpected[:8]}{' ...' if len(self.unexpected) > 8 else ''}"
        )


class MixVisionTransformer(nn.Module):
    """Four-stage MiT; ``forward(x, mod_ids)`` returns the (N, C_s, H/4..H/32, W/4..W/32) maps."""

    def __init__(
        self,
        embed_dims: Sequence[int] = (32, 64, 160, 256),
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        mlp_ratio: float = 4.0,
        drop_path: float = 0.1,
        in_chans: int = 3,
        num_modalities: int = 1,
    ) -> None:
        super().__init__()
        self.out_channels: tuple[int, ...] = tuple(embed_dims)
        rates = torch.linspace(0, drop_path, sum(depths)).tolist()  # deeper blocks drop more
        start = 0
        for i, (dim, depth, heads, sr) in enumerate(
            zip(embed_dims, depths, num_heads, sr_ratios, strict=True), 1
        ):
            patch, stride, prev = (7, 4, in_chans) if i == 1 else (3, 2, embed_dims[i - 2])
            setattr(
                self, f"patch_embed{i}", OverlapPatchEmbed(patch, stride, prev, dim, num_modalities)
            )
            blocks = [
                Block(dim, heads, mlp_ratio, sr, rates[start + j], num_modalities)
                for j in range(depth)
            ]
            setattr(self, f"block{i}", nn.ModuleList(blocks))
            setattr(self, f"norm{i}", ModalityLayerNorm(dim, num_modalities))
            start += depth
        self.apply(_init_weights)
        # An all-zero input window (no events, no LiDAR return, crop padding: "no measurement"
        # is 0 in every sparse representation) makes the first projection output its bias; a
        # zero bias gives a constant token, and the LayerNorm after it then has variance 0 and a
        # gradient of 1/sqrt(eps) = 1000 per empty token (step-1 gradient norm ~4e7 from
        # scratch). A small random bias gives such tokens a spread, so the step-1 norm is that
        # of later steps (docs/method.md section 2; bench/gradient_shares.py trajectory).
        nn.init.normal_(self.patch_embed1.proj.bias, 0.0, 0.02)

    def forward(self, x: Tensor, mod_ids: Tensor) -> list[Tensor]:
        outs = []
        for i in range(1, len(self.out_channels) + 1):
            tokens, h, w = getattr(self, f"patch_embed{i}")(x, mod_ids)
            for blk in getattr(self, f"block{i}"):
                tokens = blk(tokens, h, w, mod_ids)
            tokens = getattr(self, f"norm{i}")(tokens, mod_ids)
            x = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)
            outs.append(x)
        return outs

    def load_pretrained(self, path: str | Path) -> LoadReport:
        """Load an official SegFormer ``mit_b*.pth`` (or a ``{'state_dict': ...}`` wrapper).

        Per-modality norms are initialised from the shared ones. Every encoder tensor must come
        from the file: shape mismatches (a file of another MiT size) and encoder tensors the file
        lacks (a truncated or foreign file) are errors. Keys only the file has (its ImageNet
        classifier ``head.*``) are reported in the returned report.
        """
        if not Path(path).is_file():
            raise ValueError(f"pretrained encoder file {str(path)!r} does not exist")
        sd = torch.load(path, map_location="cpu", weights_only=True)
        sd = sd.get("state_dict", sd.get("model", sd)) if isinstance(sd, dict) else sd
        sd = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in sd.items()}
        own = self.state_dict()
        loaded, unexpected, bad = {}, [], []
        for k, v in sd.items():
            if k not in own:
                unexpected.append(k)
            elif own[k].shape == v.shape:
                loaded[k] = v
            elif own[k].ndim == 2 and own[k].shape[1:] == v.shape:  # shared norm -> per modality
                loaded[k] = v.expand_as(own[k]).clone()
            else:
                bad.append(f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}")
        if bad:
            raise ValueError(
                f"{path}: shapes do not fit this encoder (another MiT size?): {bad[:4]}"
            )
        if not loaded:
            raise ValueError(
                f"{path}: no encoder tensor matched; is this a SegFormer mit_b*.pth file?"
            )
        missing = sorted(set(own) - set(loaded))
        if missing:
            raise ValueError(
                f"{path}: {len(missing)} of {len(own)} encoder tensors are not in the file "
                f"({', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}); "
                "not a complete SegFormer mit_b* encoder"
            )
        self.load_state_dict(loaded, strict=True)
        return LoadReport(sorted(loaded), missing, sorted(unexpected))


def _init_weights(m: nn.Module) -> None:
    """SegFormer's initialisation: truncated normal linears, fan-out normal convolutions."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
