"""Paired digits for the translation families (pix2pix, SRGAN; GAN_SPEC §7): each offline digit
``y`` with a source ``x`` derived from it deterministically, so a translation ``x → y`` can be
scored against the truth on held-out pairs.

- ``pairing=edges``: ``x`` is the Sobel gradient magnitude of ``y`` (kornia's normalised 3×3
  Sobel), scaled so each image's strongest edge is 255 (pix2pix's edges → photo task).
- ``pairing=low_resolution``: ``x`` is ``y`` downsampled ×``scale`` (28 → 7 for ×4) by
  ``downsample=bicubic`` (PyTorch's antialiased bicubic, as SRGAN's MATLAB ``imresize``) or
  ``area`` (the mean of each ``scale × scale`` block) (SRGAN's ×4 task).

The pix2pix datasets (``data=facades``, ``data=maps``: :class:`Pix2PixFolder`) are the paper's
own: ``<root>/<name>/{train,val,test}/*.jpg``, each image the pair ``A|B`` side by side.

A minibatch is ``(y, x)``: targets in the first slot (what D judges as real), sources in the
second where labelled data carry labels. The digits' labels stay in ``labels`` and
``held_out_labels``, for scoring outputs with the lab classifier.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.data.images import ImageDataModule, MNISTOffline, resolve_path, to_unit_range

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


#: The official archives of the pix2pix datasets (Isola et al. 2017, the project page).
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
DIRECTIONS = ("AtoB", "BtoA")


def read_side_by_side(file: Path, resolution: int | None) -> tuple[Tensor, Tensor]:
    """uint8 RGB halves ``(A, B)`` of one pix2pix image ``A|B`` (left | right), each resized
    bilinearly to ``resolution²`` unless it already has that size (``None``: kept)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as im:
            im = im.convert("RGB")
            w, h = im.size
            halves = [im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, 2 * (w // 2), h))]
            out = []
            for half in halves:
                if resolution is not None and half.size != (resolution, resolution):
                    half = half.resize((resolution, resolution), Image.Resampling.BILINEAR)
                t = torch.frombuffer(bytearray(half.tobytes()), dtype=torch.uint8)
                out.append(t.reshape(half.size[1], half.size[0], 3).permute(2, 0, 1))
    except (OSError, UnidentifiedImageError) as err:
        raise GanlabError(f"cannot read image {file}: {err}") from err
    return out[0], out[1]


class Pix2PixFolder(ImageDataModule):
    """``data=facades`` / ``data=maps``: a pix2pix dataset, ``<root>/<name>/<split>/*.jpg``,
    each file ``A|B`` side by side (facades: A the photo, B the label map; maps: A the aerial
    photo, B the map). Training pairs are ``train/``; the held-out pairs (what the metrics
    measure) are ``held_out_split/`` (facades: ``test``, maps: ``val``, as the paper).

    Args:
        name: the dataset (its folder and archive name).
        root: the folder holding ``<name>/``.
        direction: ``BtoA`` (source B, target A: labels → photo for facades) or ``AtoB``.
        held_out_split: the split measured on.
        resolution: side of the square halves (the paper's 256); ``None``: native.
        download: fetch and unpack :data:`PIX2PIX_URL` into ``root`` when the folder is missing.
        **base_kwargs: batch_size, d_steps, iterations, seed.
    """

    num_classes = None
    sources: Tensor
    held_out_sources: Tensor | None = None

    def __init__(self, name: str, root: str | os.PathLike[str] = "data", direction: str = "BtoA",
                 held_out_split: str = "test", resolution: int | None = 256,
                 download: bool = False, **base_kwargs: int) -> None:
        if direction not in DIRECTIONS:
            raise GanlabError(f"data.direction must be one of {', '.join(DIRECTIONS)}; got "
                              f"{direction!r}")
        super().__init__(resolution=resolution, **base_kwargs)
        self.name, self.root, self.direction = name, root, direction
        self.held_out_split, self.download = held_out_split, bool(download)

    @property
    def folder(self) -> Path:
        """``<root>/<name>``."""
        return resolve_path(self.root) / self.name

    def fetch(self) -> None:
        """Download and unpack the official archive into ``root`` (``data.download=true``)."""
        from torchvision.datasets.utils import download_and_extract_archive

        root = resolve_path(self.root)
        url = PIX2PIX_URL.format(name=self.name)
        try:
            download_and_extract_archive(url, download_root=str(root), extract_root=str(root),
                                         remove_finished=True)
        except Exception as err:  # URLError, HTTPError, tarfile errors: one line
            reason = " ".join(str(err).split()) or type(err).__name__
            raise GanlabError(f"cannot download {url} into {root}: {reason}") from err

    def read_split(self, split: str) -> tuple[Tensor, Tensor]:
        """uint8 ``(sources, targets)`` of ``<name>/<split>/*.jpg`` in the chosen direction."""
        folder = self.folder / split
        files = sorted(p for p in folder.glob("*") if p.suffix.lower() in (".jpg", ".jpeg",
                                                                             ".png"))
        if not files:
            raise GanlabError(f"data={self.name}: no images in {folder}; put the pix2pix "
                              f"{self.name} dataset in {self.folder} ({{train,val,test}}/*.jpg, "
                              f"each A|B side by side) or set data.download=true")
        a, b = zip(*(read_side_by_side(f, self.resolution) for f in files), strict=True)
        a_t, b_t = torch.stack(a), torch.stack(b)
        return (b_t, a_t) if self.direction == "BtoA" else (a_t, b_t)

    def prepare(self) -> None:
        if not (self.folder / "train").is_dir() and self.download:
            self.fetch()
        self.sources, self.images = (t.contiguous() for t in self.read_split("train"))
        held_sources, held_targets = self.read_split(self.held_out_split)
        self.held_out_sources, self.held_out_images = held_sources, held_targets
        self.labels = torch.zeros(len(self.images), dtype=torch.int64)
        self.held_out_labels = None
        self.data_shape = tuple(self.images.shape[1:])
        self.source_shape = tuple(self.sources.shape[1:])
        self._perm_cache = {}

    def sample(self, index: int) -> tuple[Tensor, Tensor]:
        """Global minibatch ``index``: targets and their sources, both in [-1, 1]."""
        self._ensure_loaded()
        count = self.world_size * self.batch_size
        idx = self.rows(index * count, count)
        return to_unit_range(self.images[idx]), to_unit_range(self.sources[idx])


__all__ = ["DIRECTIONS", "PAIRINGS", "PIX2PIX_URL", "PairedDigits", "Pix2PixFolder",
           "downsample", "read_side_by_side", "sobel_edges"]
