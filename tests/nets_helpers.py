"""Tiny networks with hand-computable outputs, shared by the tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class LinearCritic(nn.Module):
    """D(x) = w . flatten(x) + b; features(x) = flatten(x) (identity), head(f) = w . f + b."""

    def __init__(self, w: list[float], b: float = 0.0, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=dtype))
        self.b = nn.Parameter(torch.tensor(b, dtype=dtype))
        self.feature_dim = len(w)

    def features(self, x: Tensor) -> Tensor:
        return x.flatten(1)

    def head(self, f: Tensor) -> Tensor:
        return f @ self.w + self.b

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
