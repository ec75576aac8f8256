"""Inception Score (Salimans et al. 2016, §4): IS = exp(E_x KL(p(y|x) || p(y))), the mean over
``splits`` equal parts of the samples, with p(y) the mean of p(y|x) within the part."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics.image.inception import InceptionScore as _InceptionScore

from ganlab.metrics.extractor import PrecomputedFeatures


class InceptionScore(_InceptionScore):
    """torchmetrics' Inception Score on logits that ganlab extracted (softmax in float64),
    with the split permutation drawn from a fixed seed (global random state untouched)."""

    def __init__(self, num_classes: int, splits: int = 10, seed: int = 0, **kwargs) -> None:
        super().__init__(feature=PrecomputedFeatures(num_classes), splits=splits,
                         normalize=False, **kwargs)
        self.seed = seed

    def update(self, imgs: Tensor) -> None:  # imgs are logits here
        super().update(imgs.to(torch.float64))

    def compute(self) -> tuple[Tensor, Tensor]:
        """(mean, standard deviation) of the score over the splits."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            mean, std = super().compute()
        return mean, std if self.splits > 1 else torch.zeros_like(mean)  # one split: no spread
