"""Anymodal dropout: which modalities each training sample keeps (docs/method.md section 4).

The reference draws ONE subset per batch, the same on every DDP rank. Here the default is one
subset per SAMPLE, expressed as a (B, M) presence mask the model takes directly, and every rank
has its own random stream (seeded from the run seed and the rank), so a global batch mixes many
subsets. ``mode='per_batch'`` reproduces the reference's choice.

Subset distributions:
- ``anyseg`` (default, the reference): k ~ Uniform{1..M}, then a uniform k-subset, so
  P(S) = 1 / (M * C(M, |S|)): every SIZE is equally likely (singletons are drawn as often as
  all the larger sets of one size together).
- ``uniform``: every non-empty subset equally likely, P(S) = 1 / (2^M - 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb

import torch
from torch import Tensor

from anyseg_model.modalities import all_subsets, canonical, subset_name

DISTRIBUTIONS = ("anyseg", "uniform")
MODES = ("per_sample", "per_batch")


def subset_probabilities(
    modalities: Sequence[str], distribution: str = "anyseg"
) -> dict[str, float]:
    """``{subset name: P(S)}`` over every non-empty subset of ``modalities``."""
    if distribution not in DISTRIBUTIONS:
        raise ValueError(
            f"unknown subset distribution {distribution!r}; valid: {list(DISTRIBUTIONS)}"
        )
    mods = canonical(modalities)
    m = len(mods)
    subsets = all_subsets(mods)
    if distribution == "uniform":
        return {subset_name(s): 1.0 / len(subsets) for s in subsets}
    return {subset_name(s): 1.0 / (m * comb(m, len(s))) for s in subsets}


class SubsetSampler:
    """Draws presence masks from its own ``torch.Generator`` (state saved for exact resume).

    ``available`` (B, M) bool, optional: modalities a sample actually has (e.g. a bag frame
    whose LiDAR dropped out); the drawn subset is restricted to them and redrawn while empty, so a
    sample is never left without input. A sample with nothing available is an error.
    """

    def __init__(
        self,
        modalities: Sequence[str],
        *,
        distribution: str = "anyseg",
        mode: str = "per_sample",
        seed: int = 0,
        rank: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown dropout mode {mode!r}; valid: {list(MODES)}")
        self.modalities = canonical(modalities)
        self.mode = mode
        probs = subset_probabilities(self.modalities, distribution)
        subsets = all_subsets(self.modalities)
        # (S, M) table of the subsets' masks and their probabilities, drawn from by index.
        self.table = torch.tensor(
            [[m in s for m in self.modalities] for s in subsets], dtype=torch.bool
        )
        self.probs = torch.tensor([probs[subset_name(s)] for s in subsets], dtype=torch.float64)
        self.generator = torch.Generator().manual_seed(self._stream_seed(seed, rank))

    @staticmethod
    def _stream_seed(seed: int, rank: int) -> int:
        # Distinct, reproducible stream per rank; large odd multiplier keeps streams apart.
        return (int(seed) * 1_000_003 + int(rank) * 7_919 + 17) % (2**63)

    def _draw(self, n: int) -> Tensor:
        idx = torch.multinomial(self.probs, n, replacement=True, generator=self.generator)
        return self.table[idx]

    def sample(self, batch_size: int, available: Tensor | None = None) -> Tensor:
        """(B, M) bool presence mask over ``self.modalities``; every row non-empty."""
        if available is not None:
            available = available.to(torch.bool).cpu()
            if available.shape != (batch_size, len(self.modalities)):
                raise ValueError(
                    f"available must be (B, M) = ({batch_size}, {len(self.modalities)}), "
                    f"got {tuple(available.shape)}"
                )
            if not bool(available.any(1).all()):
                raise ValueError("a sample has no available modality at all")
        if self.mode == "per_batch":
            mask = self._draw(1).expand(batch_size, -1).clone()
        else:
            mask = self._draw(batch_size)
        if available is None:
            return mask
        mask &= available
        for _ in range(100):  # redraw rows the restriction emptied; converges fast
            empty = ~mask.any(1)
            if not bool(empty.any()):
                return mask
            redraw = (
                self._draw(int(empty.sum()))
                if self.mode == "per_sample"
                else (self._draw(1).expand(int(empty.sum()), -1))
            )
            mask[empty] = redraw & available[empty]
        # Pathological availability (e.g. one rare modality): fall back to all that is there.
        empty = ~mask.any(1)
        mask[empty] = available[empty]
        return mask

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "mode": self.mode}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
