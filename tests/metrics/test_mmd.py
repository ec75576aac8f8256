"""The Gaussian-kernel MMD: against scikit-learn's kernel, a closed form, and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist
from sklearn.metrics.pairwise import rbf_kernel

from ganlab.metrics.mmd import gaussian_kernel, median_distance, mmd2_unbiased


def test_kernel_by_hand() -> None:
    a = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    k = gaussian_kernel(a, a, bandwidth=5.0)
    # ‖a_0 - a_1‖² = 25: exp(-25 / 50).
    expected = torch.tensor([[1.0, math.exp(-0.5)], [math.exp(-0.5), 1.0]], dtype=torch.float64)
    torch.testing.assert_close(k, expected, atol=1e-15, rtol=0)


def _peer_mmd2(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Gretton et al. 2012 eq. 3 from scikit-learn's RBF kernel (gamma = 1/(2σ²)), with the
    diagonal terms dropped by loops."""
    gamma = 1 / (2 * bandwidth**2)
    kxx, kyy, kxy = rbf_kernel(x, x, gamma=gamma), rbf_kernel(y, y, gamma=gamma), \
        rbf_kernel(x, y, gamma=gamma)
    m, n = len(x), len(y)
    xx = sum(kxx[i, j] for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(kyy[i, j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.sum() / (m * n))


@pytest.mark.parametrize(("m", "n", "bandwidth"), [(7, 7, 1.0), (5, 11, 0.3), (30, 2, 4.0)])
def test_mmd2_against_scikit_learn(m: int, n: int, bandwidth: float) -> None:
    g = torch.Generator().manual_seed(m + n)
    x = torch.randn(m, 3, generator=g, dtype=torch.float64)
    y = torch.randn(n, 3, generator=g, dtype=torch.float64) + 0.5
    expected = _peer_mmd2(x.numpy(), y.numpy(), bandwidth)
    assert mmd2_unbiased(x, y, bandwidth) == pytest.approx(expected, rel=1e-12, abs=1e-14)


def _closed_form_mmd2(shift: float, s1: float, s2: float, sigma: float, d: int) -> float:
    """MMD² of N(0, s1² I_d) and N(shift e_1, s2² I_d) under exp(-‖a-b‖²/(2σ²)): for
    u ~ N(μ, v I_d), E exp(-‖u‖²/(2σ²)) = (σ²/(σ²+v))^{d/2} exp(-‖μ‖²/(2(σ²+v)))."""
    def e(mu2: float, v: float) -> float:
        return (sigma**2 / (sigma**2 + v)) ** (d / 2) * math.exp(-mu2 / (2 * (sigma**2 + v)))

    return e(0.0, 2 * s1**2) + e(0.0, 2 * s2**2) - 2 * e(shift**2, s1**2 + s2**2)


def test_mmd2_between_gaussians_matches_the_closed_form() -> None:
    g = torch.Generator().manual_seed(0)
    n = 2000
    x = torch.randn(n, 2, generator=g, dtype=torch.float64)
    y = 0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    y[:, 0] += 1.0
    expected = _closed_form_mmd2(1.0, 1.0, 0.5, 1.0, 2)
    assert expected == pytest.approx(0.28823, abs=1e-5)
    # The estimator's standard deviation at n = 2000 is 0.009 (20 seeds): 5 SD.
    assert abs(mmd2_unbiased(x, y, 1.0) - expected) < 0.045


def test_mmd2_of_one_distribution_is_unbiased_around_zero() -> None:
    g = torch.Generator().manual_seed(1)
    values = [mmd2_unbiased(torch.randn(200, 2, generator=g), torch.randn(300, 2, generator=g),
                            1.0) for _ in range(20)]
    mean, sd = float(np.mean(values)), float(np.std(values, ddof=1))
    assert abs(mean) < 5 * sd / math.sqrt(20)
    assert min(values) < 0 < max(values)


def test_median_distance_against_scipy() -> None:
    x = torch.randn(101, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert median_distance(x) == pytest.approx(float(np.median(pdist(x.numpy()))), rel=1e-12)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        mmd2_unbiased(torch.zeros(1, 2), torch.zeros(3, 2), 1.0)
    with pytest.raises(ValueError):
        gaussian_kernel(torch.zeros(2, 2), torch.zeros(2, 2), 0.0)
    with pytest.raises(ValueError):
        median_distance(torch.zeros(1, 2))
