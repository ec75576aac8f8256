"""Unpaired two-domain data for CycleGAN (Zhu, Park, Isola & Efros 2017; GAN_SPEC §7): a
minibatch is ``(x, y)``, ``x`` from domain X in the first slot and ``y`` from domain Y in the
second, drawn independently (no pairs).

- ``data=unpaired_digits`` (:class:`UnpairedDigits`): X = the offline digits, Y = the same kind
  of digits through a hidden mapping ``true_map`` (thick strokes, then inverted colours: a
  ``dilation × dilation`` morphological dilation by kornia, then ``255 - v``). The training
  digits are split into two disjoint halves (half of each class, a fixed seed): X shows one half,
  Y the mapped other half, so training never sees a digit in both domains. The held-out digits
  (``data.held_out``) are kept with their true pairs ``(x, true_map(x))`` and labels, so
  translations are scored against the truth.
- ``data=horse2zebra`` (:class:`Horse2Zebra`): the paper's horse ↔ zebra photos in the official
  layout ``<root>/horse2zebra/{trainA,trainB,testA,testB}/*.jpg`` (downloaded from the authors'
  server with ``data.download=true``); ``testA``/``testB`` are the held-out images (unpaired).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.core.seeds import HELD_OUT_SEED
from ganlab.data.images import (
    ImageDataModule,
    ImageFolder,
    MNISTOffline,
    resolve_path,
    to_unit_range,
)
from ganlab.data.split import stratified_split
from ganlab.data.stream import generator_for

#: Seed of the split of the training digits into the X half and the Y half (fixed: the same
#: halves in every run).
HALVES_SEED = HELD_OUT_SEED + 1
#: Stream index offset of domain Y's epoch permutations (independent of X's).
Y_STREAM = 1_000_000
#: The authors' archive (pytorch-CycleGAN-and-pix2pix, datasets/download_cyclegan_dataset.sh).
HORSE2ZEBRA_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/horse2zebra.zip"
HORSE2ZEBRA_SPLITS = ("trainA", "trainB", "testA", "testB")


def true_map(images: Tensor, dilation: int = 3, invert: bool = True) -> Tensor:
    """The hidden X → Y mapping of uint8 digits ``(N, C, H, W)``: grey-scale dilation by a
    ``dilation × dilation`` square (kornia, borders ignored), then ``255 - v`` if ``invert``."""
    import kornia

    out = images
    if dilation > 1:
        kernel = torch.ones(dilation, dilation)
        out = kornia.morphology.dilation(images.float(), kernel).round().clamp(0, 255)
        out = out.to(torch.uint8)
    return 255 - out if invert else out.clone()


class UnpairedImages(ImageDataModule):
    """Base of the unpaired datamodules: ``sample(index)`` takes X's rows of the epoch stream
    and Y's rows of an independent one (:data:`Y_STREAM`). Subclasses set ``images`` (X),
    ``y_images`` (Y), ``held_out_x``, ``held_out_y`` and ``held_out_paired`` (row ``i`` of both
    is one pair)."""

    images: Tensor
    y_images: Tensor
    held_out_x: Tensor
    held_out_y: Tensor
    held_out_paired: bool = False

    def y_rows(self, start: int, count: int) -> Tensor:
        """Indices of ``y_images`` at positions ``start .. start + count - 1`` of Y's stream."""
        n = self.y_images.shape[0]
        parts, pos, end = [], start, start + count
        while pos < end:
            epoch, offset = divmod(pos, n)
            take = min(n - offset, end - pos)
            perm = torch.randperm(n, generator=generator_for(self.seed, -1 - Y_STREAM - epoch))
            parts.append(perm[offset: offset + take])
            pos += take
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)

    def sample(self, index: int) -> tuple[Tensor, Tensor]:
        """Global minibatch ``index``: X images and (unrelated) Y images, both in [-1, 1]."""
        self._ensure_loaded()
        count = self.world_size * self.batch_size
        x = self.images[self.rows(index * count, count)]
        return to_unit_range(x), to_unit_range(self.y_images[self.y_rows(index * count, count)])


class UnpairedDigits(UnpairedImages, MNISTOffline):
    """``data=unpaired_digits``: digits (X) and thick inverted digits (Y), never paired.

    Args:
        dilation: side of the square structuring element of the stroke thickening (odd, 1: none).
        invert: invert the colours after thickening.
        held_out: share of each class kept out of training with its true pairs (> 0).
        **kwargs: :class:`~ganlab.data.images.ImageDataModule`'s.
    """

    #: The second slot holds Y images, not labels.
    num_classes = None
    held_out_paired = True

    def __init__(self, dilation: int = 3, invert: bool = True, held_out: float = 0.1,
                 **kwargs: Any) -> None:
        if isinstance(dilation, bool) or int(dilation) != dilation or dilation < 1 \
                or dilation % 2 == 0:
            raise GanlabError(f"data.dilation must be an odd integer >= 1; got {dilation}")
        if not dilation > 1 and not invert:
            raise GanlabError("data.dilation=1 with data.invert=false makes Y the same as X")
        if not held_out > 0:
            raise GanlabError(f"data=unpaired_digits scores translations on held-out pairs: "
                              f"data.held_out must be > 0; got {held_out}")
        super().__init__(held_out=held_out, **kwargs)
        self.dilation, self.invert = int(dilation), bool(invert)

    def true_map(self, images: Tensor) -> Tensor:
        """This dataset's hidden X → Y mapping of uint8 digits."""
        return true_map(images, self.dilation, self.invert)

    def prepare(self) -> None:
        super().prepare()
        x_half, y_half = stratified_split(self.labels, 0.5, HALVES_SEED)
        digits, labels = self.images, self.labels
        self.images, self.labels = digits[x_half].contiguous(), labels[x_half]
        self.y_images = self.true_map(digits[y_half]).contiguous()
        self.y_labels = labels[y_half]
        self.x_index, self.y_index = x_half, y_half
        assert self.held_out_images is not None
        self.held_out_x = self.held_out_images
        self.held_out_y = self.true_map(self.held_out_images).contiguous()
        self._perm_cache = {}

    def describe(self) -> str:
        """The hidden mapping in words (for protocols and README)."""
        steps = [f"{self.dilation}x{self.dilation} grey dilation (kornia)"] \
            if self.dilation > 1 else []
        return " then ".join([*steps, *(["255 - v"] if self.invert else [])])


class Horse2Zebra(UnpairedImages, ImageFolder):
    """``data=horse2zebra``: the paper's horses (X, ``trainA``) and zebras (Y, ``trainB``);
    ``testA``/``testB`` are held out (unpaired: cycle errors only).

    Args:
        root: the folder holding ``horse2zebra/`` (relative to the original working directory).
        download: fetch and extract :data:`HORSE2ZEBRA_URL` into ``root`` when missing.
        resolution: side of the square images (256 in the paper).
        **kwargs: :class:`~ganlab.data.images.ImageDataModule`'s.
    """

    num_classes = None

    def __init__(self, root: str | os.PathLike[str] = "data", download: bool = False,
                 resolution: int = 256, **kwargs: Any) -> None:
        super().__init__(path=root, resolution=resolution, channels=3, **kwargs)
        self.root, self.download = root, bool(download)

    def folder(self) -> Path:
        """``<root>/horse2zebra``."""
        return resolve_path(self.root) / "horse2zebra"

    def fetch(self) -> None:
        """Download and extract the authors' archive into ``root``."""
        from torchvision.datasets.utils import download_and_extract_archive

        root = resolve_path(self.root)
        try:
            download_and_extract_archive(HORSE2ZEBRA_URL, download_root=str(root))
        except Exception as err:  # URLError, OSError, zipfile errors, ...
            reason = " ".join(str(err).split()) or type(err).__name__
            raise GanlabError(f"horse2zebra download into {self.folder()} failed ({reason}); "
                              f"download {HORSE2ZEBRA_URL} on a machine with internet and "
                              f"extract it there") from err

    def read_split(self, name: str) -> Tensor:
        """uint8 images of one split folder, sorted by file name."""
        files = self._images_under(self.folder() / name)
        if not files:
            raise GanlabError(f"horse2zebra: no images in {self.folder() / name}")
        return torch.stack([self._read(f) for f in files])

    def load(self) -> tuple[Tensor, Tensor]:
        folder = self.folder()
        missing = [s for s in HORSE2ZEBRA_SPLITS if not (folder / s).is_dir()]
        if missing and self.download:
            self.fetch()
            missing = [s for s in HORSE2ZEBRA_SPLITS if not (folder / s).is_dir()]
        if missing:
            raise GanlabError(
                f"horse2zebra not found in {folder} (needs {', '.join(HORSE2ZEBRA_SPLITS)}/*.jpg);"
                " run with data.download=true on a machine with internet, or copy the files there"
            )
        x = self.read_split("trainA")
        self.y_images = self.read_split("trainB")
        self.held_out_x = self.read_split("testA")
        self.held_out_y = self.read_split("testB")
        return x, torch.zeros(len(x), dtype=torch.int64)


__all__ = ["HALVES_SEED", "HORSE2ZEBRA_URL", "Horse2Zebra", "UnpairedDigits", "UnpairedImages",
           "true_map"]
