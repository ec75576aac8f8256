"""Improved precision and recall (Kynkäänniemi et al. 2019, eqs. 1-3).

Each set of features approximates its manifold by the union of balls centred on its points,
each ball's radius being the distance to the point's k-th nearest neighbour in the same set
(k = 3 in the paper). Precision is the share of generated points inside the real manifold;
recall is the share of real points inside the generated manifold.
"""

from __future__ import annotations

import torch
from torch import Tensor


def knn_radii(features: Tensor, k: int = 3, chunk: int = 1024) -> Tensor:
    """Distance from each row of ``features`` to its ``k``-th nearest other row (float64)."""
    x = features.to(torch.float64)
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and {n - 1} for {n} points, got {k}")
    radii = []
    for part in x.split(chunk):
        # the k + 1 smallest distances include the point itself (distance 0)
        radii.append(torch.cdist(part, x).kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def inside_manifold(points: Tensor, centres: Tensor, radii: Tensor, chunk: int = 1024) -> Tensor:
    """Boolean (N,): whether each point lies in a ball ||p - c_j|| <= r_j of the manifold."""
    p, c = points.to(torch.float64), centres.to(torch.float64)
    out = []
    for part in p.split(chunk):
        out.append((torch.cdist(part, c) <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of generated features ``fake`` against real features ``real``."""
    precision = inside_manifold(fake, real, knn_radii(real, k)).double().mean()
    recall = inside_manifold(real, fake, knn_radii(fake, k)).double().mean()
    return float(precision), float(recall)
