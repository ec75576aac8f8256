"""Fréchet Inception Distance (Heusel et al. 2017, eq. 6) with float64 statistics.

FID = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^{1/2}), the Fréchet (2-Wasserstein)
distance between the Gaussians fitted to real and generated features.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.image.fid import FrechetInceptionDistance

from ganlab.metrics.extractor import PrecomputedFeatures


def sqrt_psd(matrix: Tensor) -> Tensor:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor,
                     sqrt_sigma1: Tensor | None = None) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Tr (S_1 S_2)^{1/2} = Tr (S_1^{1/2} S_2 S_1^{1/2})^{1/2}: the second matrix is symmetric,
    so two symmetric eigendecompositions replace a general (slow, complex) one; the first,
    S_1^{1/2}, can be given (``sqrt_sigma1``: the real data's, computed once).
    """
    mu1, mu2, sigma1, sigma2 = (t.to(torch.float64) for t in (mu1, mu2, sigma1, sigma2))
    root1 = sqrt_psd(sigma1) if sqrt_sigma1 is None else sqrt_sigma1.to(torch.float64)
    middle = root1 @ sigma2 @ root1
    middle = (middle + middle.T) / 2
    trace_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    return float(diff @ diff + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt)


class FrechetDistance(FrechetInceptionDistance):
    """torchmetrics' FID on features that ganlab extracted (float64 sums, synced across
    processes), with real statistics that can be set from the cache and survive ``reset``."""

    def __init__(self, num_features: int, **kwargs) -> None:
        super().__init__(feature=PrecomputedFeatures(num_features), reset_real_features=False,
                         **kwargs)
        self.real_sqrt: Tensor | None = None

    def set_real_statistics(self, mu: Tensor, sigma: Tensor, num: int,
                            sqrt_sigma: Tensor | None = None) -> None:
        """Make the real state equal to that of ``num`` features of mean ``mu`` and (unbiased)
        covariance ``sigma`` (whose square root may be given, to save its computation)."""
        self.real_sqrt = sqrt_sigma
        mu = mu.to(torch.float64).to(self.real_features_sum.device)
        sigma = sigma.to(torch.float64).to(self.real_features_sum.device)
        self.real_features_sum = mu * num
        self.real_features_cov_sum = sigma * (num - 1) + num * torch.outer(mu, mu)
        self.real_features_num_samples = torch.tensor(num, dtype=torch.long,
                                                      device=mu.device)

    def compute(self) -> Tensor:
        """FID between the real and the generated features (float64)."""
        if self.real_features_num_samples < 2 or self.fake_features_num_samples < 2:
            raise RuntimeError("FID needs at least two real and two generated samples")
        stats = []
        for which in ("real", "fake"):
            total = getattr(self, f"{which}_features_sum")
            cov_sum = getattr(self, f"{which}_features_cov_sum")
            n = getattr(self, f"{which}_features_num_samples")
            mean = total / n
            stats.append((mean, (cov_sum - n * torch.outer(mean, mean)) / (n - 1)))
        (mu_r, s_r), (mu_f, s_f) = stats
        value = frechet_distance(mu_r, s_r, mu_f, s_f, self.real_sqrt)
        return torch.tensor(value, dtype=torch.float64)


def mean_and_covariance(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased covariance of ``features`` (N, D), in float64."""
    x = features.to(torch.float64)
    mu = x.mean(dim=0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)
