"""Gaussian mixture datasets: low-dimensional data with known modes, for mode-collapse studies.

Every mixture has equal weights and one isotropic standard deviation. The label ``y`` of a
sample is the index of the mode it was drawn from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from ganlab.data.base import GANDataModule
from ganlab.data.stream import generator_for


class GaussianMixtureDataModule(GANDataModule):
    """Equal-weight mixture of ``M`` Gaussians ``N(center_m, std² I)`` in ``d`` dimensions.

    Args:
        centers: mode centers, shape ``(M, d)``.
        std: standard deviation of every mode, per coordinate.
        batch_size, d_steps, iterations, seed: see :class:`GANDataModule`.
    """

    def __init__(
        self,
        centers: Tensor | Sequence[Sequence[float]],
        std: float,
        batch_size: int,
        d_steps: int,
        iterations: int,
        seed: int,
    ) -> None:
        super().__init__(batch_size=batch_size, d_steps=d_steps, iterations=iterations, seed=seed)
        if isinstance(centers, Tensor):
            c = centers.detach().to(torch.float32)
        else:  # a nested sequence, e.g. a list from a Hydra config
            try:
                rows = [[float(v) for v in row] for row in centers]
            except TypeError as err:
                raise ValueError(f"centers must have shape (M, d), got {centers!r}") from err
            c = torch.tensor(rows, dtype=torch.float32)
        if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
            raise ValueError(f"centers must have shape (M, d), M, d >= 1, got {tuple(c.shape)}")
        if not std > 0:
            raise ValueError(f"std must be positive, got {std}")
        self.mode_centers: Tensor = c.clone()
        self.mode_std: float = float(std)
        self.data_shape = (c.shape[1],)
        self.num_classes = c.shape[0]

    def _draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` samples and their mode indices, from ``generator``."""
        y = torch.randint(self.num_classes, (n,), generator=generator, dtype=torch.int64)
        noise = torch.randn(n, self.data_shape[0], generator=generator, dtype=torch.float32)
        return self.mode_centers[y] + self.mode_std * noise, y

    def sample(self, index: int) -> tuple[Tensor, Tensor]:
        """Global minibatch ``index``: ``world_size * batch_size`` points and mode indices."""
        return self._draw(self.world_size * self.batch_size, generator_for(self.seed, index))

    def sample_n(self, n: int, seed: int) -> Tensor:
        """``n`` points drawn with a generator seeded by ``seed`` (for evaluation)."""
        g = torch.Generator()
        g.manual_seed(seed)
        return self._draw(n, g)[0]

    def log_density(self, x: Tensor) -> Tensor:
        """Log of the mixture pdf at the rows of ``x`` (shape ``(N, d)``), shape ``(N,)``."""
        x = torch.as_tensor(x, dtype=torch.float32).reshape(-1, self.data_shape[0])
        d = self.data_shape[0]
        sq = torch.cdist(x.double(), self.mode_centers.double()).square()  # (N, M)
        var = self.mode_std**2
        log_norm = -0.5 * d * math.log(2 * math.pi * var) - math.log(self.num_classes)
        return (torch.logsumexp(-sq / (2 * var), dim=1) + log_norm).to(torch.float32)

    def density(self, x: Tensor) -> Tensor:
        """The mixture pdf at the rows of ``x`` (shape ``(N, d)``), shape ``(N,)``."""
        return self.log_density(x).exp()


class ToyRing(GaussianMixtureDataModule):
    """``num_modes`` Gaussians evenly spaced on a circle: angles ``2πk / num_modes``."""

    def __init__(
        self, radius: float = 1.0, num_modes: int = 8, std: float = 0.01, **base_kwargs: int
    ) -> None:
        # arange, not linspace(0, 2π, M): linspace includes 2π and so puts two modes at angle 0.
        angles = 2 * math.pi * torch.arange(num_modes, dtype=torch.float64) / num_modes
        centers = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
        super().__init__(centers=centers.float(), std=std, **base_kwargs)
        self.radius = float(radius)


class ToyGrid(GaussianMixtureDataModule):
    """25 Gaussians at the points of the grid ``{-4, -2, 0, 2, 4}²``."""

    def __init__(self, std: float = 0.05, **base_kwargs: int) -> None:
        axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
        centers = torch.cartesian_prod(axis, axis)
        super().__init__(centers=centers, std=std, **base_kwargs)


class Gaussian1D(GaussianMixtureDataModule):
    """A 1-D mixture of Gaussians at ``means`` (the data of Figure 1 of Goodfellow et al. 2014)."""

    def __init__(
        self, means: Sequence[float] = (-2.0, 2.0), std: float = 0.5, **base_kwargs: int
    ) -> None:
        centers = torch.tensor([float(m) for m in means], dtype=torch.float32).reshape(-1, 1)
        super().__init__(centers=centers, std=std, **base_kwargs)
