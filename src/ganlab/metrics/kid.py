"""Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of MMD^2 with the
cubic polynomial kernel k(x, y) = (x·y / D + 1)^3, averaged over random subsets."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.image.kid import KernelInceptionDistance
from torchmetrics.utilities import dim_zero_cat

from ganlab.metrics.extractor import PrecomputedFeatures


class KernelDistance(KernelInceptionDistance):
    """torchmetrics' KID state (all features, gathered across processes) on features that
    ganlab extracted; MMD^2 summed in float64 over subsets drawn from a fixed seed (the
    global random state is left untouched)."""

    def __init__(self, num_features: int, subsets: int = 100, subset_size: int = 1000,
                 seed: int = 0, **kwargs) -> None:
        super().__init__(feature=PrecomputedFeatures(num_features), subsets=subsets,
                         subset_size=subset_size, reset_real_features=False, **kwargs)
        self.seed = seed

    def set_real_features(self, features: Tensor) -> None:
        """Replace the real features (e.g. by the cached ones)."""
        self.real_features = [features.to(torch.float64)]

    def update(self, imgs: Tensor, real: bool) -> None:  # imgs are features here
        super().update(imgs.to(torch.float64), real)

    def compute(self) -> tuple[Tensor, Tensor]:
        """(mean, population standard deviation) of MMD^2 over ``subsets`` random subsets of
        ``subset_size`` real and generated features (capped at the number of samples), as
        torchmetrics computes it (subsets drawn from ``seed``)."""
        real = dim_zero_cat(self.real_features).float()
        fake = dim_zero_cat(self.fake_features).float()
        n_r, n_f = real.shape[0], fake.shape[0]
        size = min(self.subset_size, n_r, n_f)
        gamma = self.gamma if self.gamma is not None else 1.0 / real.shape[1]
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        scores = []
        for _ in range(self.subsets):
            i = torch.randperm(n_r, generator=gen)[:size].to(real.device)
            j = torch.randperm(n_f, generator=gen)[:size].to(fake.device)
            x, y = real[i], fake[j]
            scores.append(_mmd2(x @ x.T, y @ y.T, x @ y.T, gamma, self.coef, self.degree))
        values = torch.tensor(scores, dtype=torch.float64)
        return values.mean(), values.std(unbiased=False)


def _mmd2(xx: Tensor, yy: Tensor, xy: Tensor, gamma: float, coef: float, degree: int) -> float:
    """Unbiased MMD^2 from the dot products of x with x, y with y and x with y (m x m each):
    the products in float32 (the features' precision, 5x faster than float64 on a CPU), the
    kernel values and sums in float64."""
    m = xx.shape[0]

    def kernel_sum(products: Tensor, skip_diagonal: bool) -> Tensor:
        k = products.double().mul_(gamma).add_(coef).pow_(degree)
        total = k.sum()
        return total - k.diagonal().sum() if skip_diagonal else total

    within = kernel_sum(xx, True) + kernel_sum(yy, True)
    return float(within / (m * (m - 1)) - 2 * kernel_sum(xy, False) / m**2)


def mmd2_unbiased(x: Tensor, y: Tensor, degree: int = 3, coef: float = 1.0,
                  gamma: float | None = None) -> float:
    """Unbiased MMD^2 between samples ``x`` and ``y`` (same size m) with the polynomial kernel
    (gamma x·y + coef)^degree, gamma = 1 / D by default (Bińkowski et al. 2018, eq. 2 with
    KID's kernel)."""
    x, y = x.float(), y.float()
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return _mmd2(x @ x.T, y @ y.T, x @ y.T, g, coef, degree)
