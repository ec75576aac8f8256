"""Stratified splits of a labelled dataset: the same share of every class held out."""

from __future__ import annotations

import torch
from torch import Tensor


def stratified_split(labels: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Sorted indices ``(kept, held_out)``: ``round(fraction * n_k)`` of each class ``k`` held
    out, chosen by ``seed`` (classes in increasing order, one permutation each)."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    g = torch.Generator().manual_seed(seed)
    kept, held = [], []
    for k in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == k).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        m = round(fraction * len(idx))
        held.append(idx[:m])
        kept.append(idx[m:])
    return torch.cat(kept).sort().values, torch.cat(held).sort().values


__all__ = ["stratified_split"]
