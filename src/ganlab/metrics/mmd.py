"""Maximum mean discrepancy with a Gaussian kernel (Gretton et al. 2012, "A Kernel Two-Sample
Test", JMLR 13).

``k(a, b) = exp(-‖a - b‖² / (2 σ²))``. For samples ``x_1..x_m ~ P`` and ``y_1..y_n ~ Q`` the
unbiased estimator of ``MMD²(P, Q) = E k(x, x') + E k(y, y') - 2 E k(x, y)`` is (their eq. 3,
with ``m ≠ n`` allowed)::

    1/(m(m-1)) sum_{i≠j} k(x_i, x_j) + 1/(n(n-1)) sum_{i≠j} k(y_i, y_j)
        - 2/(mn) sum_{i,j} k(x_i, y_j)

It can be slightly negative when ``P = Q``. The median heuristic sets ``σ`` to the median of the
pairwise distances ``‖a - b‖`` (``a ≠ b``) of a sample (Gretton et al. 2012, §8).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _distances(a: Tensor, b: Tensor) -> Tensor:
    """``‖a_i - b_j‖`` in float64, computed from the differences (exact zeros on ties)."""
    return torch.cdist(a.double().flatten(1), b.double().flatten(1),
                       compute_mode="donot_use_mm_for_euclid_dist")


def gaussian_kernel(a: Tensor, b: Tensor, bandwidth: float) -> Tensor:
    """``k(a_i, b_j) = exp(-‖a_i - b_j‖² / (2 σ²))`` ``(len(a), len(b))``, in float64."""
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    d2 = _distances(a, b).pow(2)
    return torch.exp(-d2 / (2 * bandwidth**2))


def median_distance(x: Tensor) -> float:
    """Median of ``‖x_i - x_j‖`` over the pairs ``i < j`` (the median heuristic's ``σ``)."""
    if x.shape[0] < 2:
        raise ValueError("the median heuristic needs at least two points")
    d = _distances(x, x)
    i, j = torch.triu_indices(x.shape[0], x.shape[0], offset=1)
    # The mean of the two middle values for an even count (numpy's convention).
    return float(torch.quantile(d[i, j], 0.5))


def mmd2_unbiased(x: Tensor, y: Tensor, bandwidth: float) -> float:
    """The unbiased estimate of ``MMD²`` between the samples ``x`` ``(m, ...)`` and ``y``
    ``(n, ...)`` with the Gaussian kernel of width ``bandwidth`` (``m, n >= 2``)."""
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased MMD needs at least two points per sample; got {m}, {n}")
    kxx = gaussian_kernel(x, x, bandwidth)
    kyy = gaussian_kernel(y, y, bandwidth)
    kxy = gaussian_kernel(x, y, bandwidth)
    xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(xx + yy - 2 * kxy.mean())


__all__ = ["gaussian_kernel", "median_distance", "mmd2_unbiased"]
