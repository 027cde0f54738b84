"""Scoring one model on every modality subset (docs/method.md section 7) in a single encoder pass.

The encoder treats modalities independently (fusion happens after each stage, from per-stream
features only: the mean, or the presence gate whose scores each stream computes from itself),
so a sample's per-modality features are the same whatever subset it belongs to. Running the
encoder once on all modalities and re-fusing per subset computes the same function as
``model(inputs restricted to the subset)``, at 1/15 of the encoder cost. The two are not
bit-identical: the encoder runs on a batch of another size, and batched convolution and matrix
kernels sum in a different order, so results agree to float rounding (a test holds them within
1e-5 and the predicted labels equal).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from anyseg_model.metrics import SubsetScores
from anyseg_model.modalities import all_subsets, canonical, subset_name
from anyseg_model.model import AnySegModel, Features

from .engine import autocast, progress, to_device


def subset_logits(model: AnySegModel, feats: Features, subset: Iterable[str]) -> torch.Tensor:
    """Logits at 1/4 for ``subset``, from features computed on a superset (re-fused over it)."""
    mods = canonical(subset)
    idx = [feats.modalities.index(m) for m in mods]
    per = [f[:, idx] for f in feats.per_modality]  # (B, |S|, C, h, w) per stage
    present = feats.present.new_ones(per[0].shape[0], len(idx))
    return model.forward_head(model.fuse(per, present, mods), present.sum(1))


@torch.no_grad()
def evaluate_subsets(
    model: AnySegModel,
    loader,
    classes: Sequence[str],
    device: torch.device,
    *,
    subsets: Sequence[Sequence[str]] | None = None,
    amp_dtype=None,
    max_batches: int = 0,
    show: bool = True,
    desc: str = "eval",
    label_size: Sequence[int] | None = None,
    distributed: bool = False,
) -> SubsetScores:
    """Confusion matrices over the loader for each subset (default: all non-empty subsets of
    the model's modalities). Samples missing one of a subset's modalities skip that subset.

    label_size: score against labels resized to (H, W) by nearest neighbour (the paper's
    protocol scores DELIVER at 1024x1024) instead of the labels' native size.
    distributed: the loader holds this rank's shard (:class:`ShardSampler`); the confusion
    matrices are summed over all ranks, so every rank returns the scores of the whole split.
    """
    was_training = model.training
    model.eval()
    if distributed and dist.is_initialized():
        # DDP keeps parameters equal but each rank's BatchNorm running statistics come from its
        # own last batch: score rank 0's model (the one it saves) on every shard.
        for buf in model.buffers():
            dist.broadcast(buf, src=0)
    subsets = [canonical(s) for s in (subsets or all_subsets(model.modalities))]
    scores = SubsetScores(classes)
    total = len(loader) if not max_batches else min(max_batches, len(loader))
    for i, batch in enumerate(progress(loader, total, desc, show)):
        if max_batches and i >= max_batches:
            break
        batch = to_device(batch, device)
        avail = batch["available"]  # (B, M) over model.modalities
        inputs = {m: batch["inputs"][m] for m in model.modalities}
        label = batch["label"]
        if label_size is not None and tuple(label.shape[1:]) != tuple(label_size):
            label = F.interpolate(label[:, None].float(), size=tuple(label_size), mode="nearest")
            label = label[:, 0].long()
        with autocast(device, amp_dtype):
            feats = model.forward_features(inputs, avail)
        for subset in subsets:
            idx = [model.modalities.index(m) for m in subset]
            rows = avail[:, idx].all(1)
            if not bool(rows.any()):
                continue
            with autocast(device, amp_dtype):
                logits = subset_logits(model, feats, subset)
            logits = F.interpolate(
                logits[rows].float(), size=label.shape[1:], mode="bilinear", align_corners=False
            )
            pred = logits.max(1).indices.cpu().numpy()  # argmax(1), several times faster on CPU
            scores.add(subset_name(subset), pred, label[rows].cpu().numpy())
    model.train(was_training)
    if distributed and dist.is_initialized():
        all_reduce_scores(scores, [subset_name(s) for s in subsets], device)
    return scores


def all_reduce_scores(scores: SubsetScores, names: Sequence[str], device: torch.device) -> None:
    """Sum every rank's confusion matrices in place (subsets a rank never saw count as zeros,
    so every rank takes part in the same collective with the same shapes)."""
    k = len(scores.classes)
    stack = torch.from_numpy(
        np.stack([scores.conf.get(n, np.zeros((k, k), np.int64)) for n in names])
    ).to(device)
    dist.all_reduce(stack, op=dist.ReduceOp.SUM)
    total = stack.cpu().numpy()
    scores.conf = {n: total[i] for i, n in enumerate(names) if total[i].sum() > 0}


class ShardSampler(torch.utils.data.Sampler):
    """Indices rank, rank + world, ... of a data set: disjoint shards covering every sample
    exactly once (DistributedSampler pads with repeats, which would count samples twice)."""

    def __init__(self, n: int, rank: int, world_size: int) -> None:
        self.indices = list(range(rank, n, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
