"""Joint augmentation of all modalities and the label (docs/method.md section 6).

Works on ENCODED samples (each modality already a float (3, H, W) tensor from its
:class:`~anyseg_model.representations.Representation`), so training and the node share one
encoding path and the augmentation only moves pixels around:

- colour jitter (p=0.2) and 3x3 Gaussian blur (p=0.2): RGB only, done in [0, 1] colour space
  (the ImageNet normalisation is undone and redone around them);
- horizontal flip (p=0.5): every modality and the label together;
- random resized crop, scale 0.5-2.0 of the target size: dense images resample bilinearly,
  sparse ones (projected LiDAR, event frames, metric depth with holes) and the label by nearest
  neighbour, because averaging a LiDAR hit with an empty pixel invents a surface; padding is 0
  in input space (ImageNet mean colour for RGB, "no measurement" for the others) and 255
  (ignore) in the label, so padded pixels never supervise.

Randomness comes from an explicit ``torch.Generator``, so a sample's augmentation depends only on
(seed, epoch, index), not on worker count or order.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from anyseg_model.classes import IGNORE_INDEX
from anyseg_model.preprocess import resize
from anyseg_model.representations import IMAGENET_MEAN, IMAGENET_STD

Sample = dict  # {"inputs": {m: (3, H, W) float}, "label": (H, W) int64, "available": (M,) bool}


def _uniform(g: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=g))


def resize_label(y: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(y.shape) == tuple(size):
        return y
    return F.interpolate(y[None, None].float(), size=size, mode="nearest")[0, 0].long()


def colour_jitter(rgb01: Tensor, g: torch.Generator, strength: float = 0.3) -> Tensor:
    """Brightness, contrast, saturation jitter in [0, 1] space, factors in [1-s, 1+s]."""
    x = rgb01 * _uniform(g, 1 - strength, 1 + strength)
    mean = x.mean()
    x = (x - mean) * _uniform(g, 1 - strength, 1 + strength) + mean
    grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    x = (x - grey) * _uniform(g, 1 - strength, 1 + strength) + grey
    return x.clamp(0.0, 1.0)


def gaussian_blur3(x: Tensor, sigma: float) -> Tensor:
    """3x3 Gaussian blur of a (C, H, W) image, per channel, edges replicated."""
    k1 = torch.exp(-(torch.tensor([-1.0, 0.0, 1.0]) ** 2) / (2 * sigma * sigma))
    k1 = k1 / k1.sum()
    k = (k1[:, None] * k1[None, :]).to(x)  # (3, 3)
    c = x.shape[0]
    padded = F.pad(x[None], (1, 1, 1, 1), mode="replicate")
    return F.conv2d(padded, k.expand(c, 1, 3, 3), groups=c)[0]


class JointTransform:
    """Training augmentation; ``__call__(sample, generator)`` returns a new sample of ``size``.

    dense: modality -> bool (see :func:`anyseg_model.preprocess.is_dense`).
    rgb_mean/std: the RGB representation's
    normalisation, to jitter colours in [0, 1] space.
    """

    def __init__(
        self,
        size: tuple[int, int],
        dense: Mapping[str, bool],
        *,
        scale: tuple[float, float] = (0.5, 2.0),
        hflip: float = 0.5,
        jitter: float = 0.2,
        blur: float = 0.2,
        rgb_mean=IMAGENET_MEAN,
        rgb_std=IMAGENET_STD,
    ) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.dense = dict(dense)
        self.scale = (float(scale[0]), float(scale[1]))
        self.hflip, self.jitter, self.blur = hflip, jitter, blur
        self.mean = torch.tensor(rgb_mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(rgb_std, dtype=torch.float32).view(3, 1, 1)

    def _rgb(self, x: Tensor, g: torch.Generator) -> Tensor:
        do_jitter = float(torch.rand((), generator=g)) < self.jitter
        do_blur = float(torch.rand((), generator=g)) < self.blur
        sigma = _uniform(g, 0.1, 2.0)
        if not (do_jitter or do_blur):
            return x
        x01 = x * self.std + self.mean
        if do_jitter:
            x01 = colour_jitter(x01, g)
        if do_blur:
            x01 = gaussian_blur3(x01, sigma)
        return (x01 - self.mean) / self.std

    def __call__(self, sample: Sample, g: torch.Generator) -> Sample:
        inputs = dict(sample["inputs"])
        label = sample["label"]
        if "rgb" in inputs:
            inputs["rgb"] = self._rgb(inputs["rgb"], g)
        if float(torch.rand((), generator=g)) < self.hflip:
            inputs = {m: x.flip(-1) for m, x in inputs.items()}
            label = label.flip(-1)
        # Random resized crop: rescale so the image is `ratio` times the target size (aspect
        # kept), then take a random window of the target size, padding where it is too small.
        h, w = label.shape
        th, tw = self.size
        ratio = _uniform(g, *self.scale)
        factor = ratio * min(th / h, tw / w)
        nh, nw = max(1, int(h * factor + 0.5)), max(1, int(w * factor + 0.5))
        y0 = int(torch.randint(0, max(nh - th, 0) + 1, (), generator=g))
        x0 = int(torch.randint(0, max(nw - tw, 0) + 1, (), generator=g))
        out_inputs = {}
        for m, x in inputs.items():
            x = resize(x, (nh, nw), self.dense.get(m, False))[:, y0 : y0 + th, x0 : x0 + tw]
            out_inputs[m] = F.pad(x, (0, tw - x.shape[2], 0, th - x.shape[1]), value=0.0)
        y = resize_label(label, (nh, nw))[y0 : y0 + th, x0 : x0 + tw]
        y = F.pad(y, (0, tw - y.shape[1], 0, th - y.shape[0]), value=IGNORE_INDEX)
        return {**sample, "inputs": out_inputs, "label": y}


class EvalTransform:
    """Validation: inputs resized to the network's size; the label keeps its native size
    (logits are upsampled to it, so scores are at full resolution)."""

    def __init__(self, size: tuple[int, int], dense: Mapping[str, bool]) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.dense = dict(dense)

    def __call__(self, sample: Sample, g: torch.Generator | None = None) -> Sample:
        inputs = {
            m: resize(x, self.size, self.dense.get(m, False)) for m, x in sample["inputs"].items()
        }
        return {**sample, "inputs": inputs}
