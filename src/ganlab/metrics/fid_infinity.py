"""FID at several sample sizes and its extrapolation to infinitely many samples, FID∞
(Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and where to find them").

FID_N, measured on N generated samples, is biased upwards, and to first order the bias is
linear in 1/N: E[FID_N] = FID∞ + k / N. Measuring FID_N on random subsets of the generated
features for several N and fitting that line by least squares gives FID∞ (the intercept at
1/N = 0) and k, which says how much a number at a given N owes to its sample size. As in the
paper (their ``calculate_FID_infinity``), the N are evenly spaced (15 points from 5,000 to
50,000 there), each subset is a fresh random draw of the generated features, and the real
statistics stay fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.metrics.frechet import frechet_distance, mean_and_covariance

METHOD = ("Chong & Forsyth 2020: FID_N on random subsets of the generated features (real "
          "statistics fixed), least-squares fit FID_N = FID_inf + k/N")


def fit_inverse_n(sizes: Sequence[int], values: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``(a, k)`` of ``values ≈ a + k / sizes`` (``a``: the value at N = ∞)."""
    if len(sizes) != len(values) or len(set(sizes)) < 2:
        raise GanlabError("the FID_inf fit needs at least two different sample sizes")
    x = 1.0 / torch.tensor(sizes, dtype=torch.float64)
    y = torch.tensor(values, dtype=torch.float64)
    design = torch.stack([torch.ones_like(x), x], dim=1)
    solution = torch.linalg.lstsq(design, y[:, None], driver="gelsd").solution[:, 0]
    return float(solution[0]), float(solution[1])


def sample_sizes(num_samples: int, points: int, smallest: float) -> list[int]:
    """``points`` sizes evenly spaced from ``smallest * num_samples`` (rounded) to
    ``num_samples`` (the paper: 15 points, 5,000 to 50,000, i.e. ``smallest = 0.1``)."""
    if points < 2:
        raise GanlabError(f"metrics.fid_infinity_points must be 0 (off) or at least 2, "
                          f"got {points}")
    if not 0 < smallest < 1:
        raise GanlabError(f"metrics.fid_infinity_min must be in (0, 1), got {smallest}")
    low = max(2, round(smallest * num_samples))
    sizes = torch.linspace(low, num_samples, points).round().long().unique().tolist()
    if len(sizes) < 2:
        raise GanlabError(f"FID_inf needs at least two sample sizes; {num_samples} samples "
                          "are too few")
    return [int(n) for n in sizes]


def fid_infinity(
    real_mu: Tensor,
    real_sigma: Tensor,
    fake_features: Tensor,
    sizes: Sequence[int],
    seed: int = 0,
    real_sqrt_sigma: Tensor | None = None,
) -> dict[str, Any]:
    """FID_N against the real statistics for each N in ``sizes`` (each on a random subset of
    ``fake_features`` drawn with ``seed``) and the fit: ``{"sizes", "fids", "fid_infinity",
    "k"}``."""
    n = fake_features.shape[0]
    if max(sizes) > n:
        raise GanlabError(f"FID_inf: a sample size {max(sizes)} exceeds the {n} samples")
    g = torch.Generator().manual_seed(seed)
    fids = []
    for size in sizes:
        subset = fake_features[torch.randperm(n, generator=g)[:size]]
        mu, sigma = mean_and_covariance(subset)
        fids.append(frechet_distance(real_mu, real_sigma, mu, sigma, real_sqrt_sigma))
    value, k = fit_inverse_n(sizes, fids)
    return {"sizes": [int(s) for s in sizes], "fids": fids, "fid_infinity": value, "k": k}


def fid_infinity_protocol(num_generated: int, points: int, smallest: float, seed: int,
                          fit: dict[str, Any] | None) -> dict[str, Any]:
    """The protocol entry ``{"fid_infinity": {...}}`` (empty when off): the method, the sizes,
    the subsets' seed and, once measured, the FID at each size and the fit."""
    if not points:
        return {}
    entry = {"method": METHOD, "subset_seed": seed,
             "sizes": sample_sizes(num_generated, points, smallest)}
    return {"fid_infinity": {**entry, **(fit or {})}}
