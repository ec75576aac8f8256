"""Paired digits for the translation families (pix2pix, SRGAN; GAN_SPEC §7): each offline digit
``y`` with a source ``x`` derived from it deterministically, so a translation ``x → y`` can be
scored against the truth on held-out pairs.

- ``pairing=edges``: ``x`` is the Sobel gradient magnitude of ``y`` (kornia's normalised 3×3
  Sobel), scaled so each image's strongest edge is 255 (pix2pix's edges → photo task).
- ``pairing=low_resolution``: ``x`` is ``y`` downsampled ×``scale`` (28 → 7 for ×4) by
  ``downsample=bicubic`` (PyTorch's antialiased bicubic, as SRGAN's MATLAB ``imresize``) or
  ``area`` (the mean of each ``scale × scale`` block) (SRGAN's ×4 task).

A minibatch is ``(y, x)``: targets in the first slot (what D judges as real), sources in the
second where labelled data carry labels. The digits' labels stay in ``labels`` and
``held_out_labels``, for scoring outputs with the lab classifier.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.data.images import MNISTOffline, to_unit_range

PAIRINGS = ("edges", "low_resolution")
DOWNSAMPLING = ("bicubic", "area")


def to_uint8(images: Tensor) -> Tensor:
    """Floats in [0, 255] rounded to uint8."""
    return images.round().clamp(0, 255).to(torch.uint8)


def sobel_edges(images: Tensor) -> Tensor:
    """uint8 edge maps of uint8 images ``(N, C, H, W)``: the magnitude of kornia's normalised
    Sobel gradient (without ``kornia.filters.sobel``'s ``eps``, so flat regions stay 0),
    scaled per image so that its maximum is 255 (an image without edges stays 0)."""
    import kornia

    gradient = kornia.filters.spatial_gradient(images.float() / 255, normalized=True)
    magnitude = torch.hypot(gradient[:, :, 0], gradient[:, :, 1])
    peak = magnitude.amax(dim=(1, 2, 3), keepdim=True)
    return to_uint8(torch.where(peak > 0, magnitude / peak.clamp_min(1e-12), 0.0) * 255)


def downsample(images: Tensor, scale: int, method: str) -> Tensor:
    """uint8 images ``(N, C, H, W)`` reduced ×``scale`` by ``method`` (``bicubic``: antialiased
    bicubic; ``area``: block means)."""
    x = images.float()
    if method == "area":
        small = F.avg_pool2d(x, scale)
    else:
        size = (images.shape[-2] // scale, images.shape[-1] // scale)
        small = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
    return to_uint8(small)


class PairedDigits(MNISTOffline):
    """``data=paired_digits``: (target digit, derived source) pairs of the 5,000 offline digits.

    Args:
        pairing: ``edges`` or ``low_resolution`` (module docstring).
        scale: the ×factor of ``low_resolution`` (28 must be divisible by it).
        downsample: ``bicubic`` or ``area``, for ``low_resolution``.
        **kwargs: :class:`~ganlab.data.images.ImageDataModule`'s (``held_out``, ...).
    """

    #: The second slot holds source images, not labels.
    num_classes = None
    sources: Tensor
    held_out_sources: Tensor | None = None

    def __init__(self, pairing: str = "edges", scale: int = 4, downsample: str = "bicubic",
                 **kwargs: Any) -> None:
        if pairing not in PAIRINGS:
            raise GanlabError(f"data.pairing must be one of {', '.join(PAIRINGS)}; got "
                              f"{pairing!r}")
        if downsample not in DOWNSAMPLING:
            raise GanlabError(f"data.downsample must be one of {', '.join(DOWNSAMPLING)}; got "
                              f"{downsample!r}")
        if pairing == "low_resolution" and (int(scale) < 2 or 28 % int(scale)):
            raise GanlabError(f"data.scale must divide the digits' 28 pixels and be >= 2; got "
                              f"{scale}")
        super().__init__(**kwargs)
        self.pairing, self.scale, self.downsample = pairing, int(scale), downsample

    def derive(self, images: Tensor) -> Tensor:
        """The uint8 sources of uint8 target images."""
        if self.pairing == "edges":
            return sobel_edges(images)
        return downsample(images, self.scale, self.downsample)

    def prepare(self) -> None:
        super().prepare()
        self.sources = self.derive(self.images).contiguous()
        if self.held_out_images is not None:
            self.held_out_sources = self.derive(self.held_out_images).contiguous()
        self.source_shape = tuple(self.sources.shape[1:])

    def sample(self, index: int) -> tuple[Tensor, Tensor]:
        """Global minibatch ``index``: targets and their sources, both in [-1, 1]."""
        self._ensure_loaded()
        count = self.world_size * self.batch_size
        idx = self.rows(index * count, count)
        return to_unit_range(self.images[idx]), to_unit_range(self.sources[idx])

    def describe(self) -> str:
        """The pairing in words (for protocols and README)."""
        if self.pairing == "edges":
            return "x = Sobel gradient magnitude of y (kornia, normalised 3x3), max scaled to 255"
        return f"x = y downsampled x{self.scale} ({self.downsample})"


__all__ = ["PAIRINGS", "PairedDigits", "downsample", "sobel_edges"]
