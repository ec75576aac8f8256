"""Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", §3.1)."""

from __future__ import annotations

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.tricks.base import GStep, Trick

NORMS = ("l2", "l1")
MODES = ("replace", "add")


def feature_matching_cost(real_features: Tensor, fake_features: Tensor, norm: str) -> Tensor:
    """``||E_x f(x) - E_z f(G(z))||_2^2`` (``l2``, the paper) or the mean over features of
    ``|E_x f(x) - E_z f(G(z))|`` (``l1``, the released improved-gan code); inputs ``(B, A)``."""
    diff = real_features.flatten(1).mean(0) - fake_features.flatten(1).mean(0)
    if norm == "l2":
        return diff.pow(2).sum()
    if norm == "l1":
        return diff.abs().mean()
    raise GanlabError(f"feature_matching: unknown norm '{norm}'; valid: {', '.join(NORMS)}")


class FeatureMatching(Trick):
    """G matches the mean of D's intermediate features ``f = discriminator.features`` on real
    data: ``J_G = ||E_x f(x) - E_z f(G(z))||^2`` (``mode=replace``, the paper) or
    ``J_G = adversarial + weight * FM`` (``mode=add``).

    Real features are computed without a graph from the iteration's last real minibatch
    (passed through the run's ``d_input`` transforms, like every input of D, and with its
    condition in a conditional run); fake features keep the graph to G. D's parameters get no
    gradient (they are frozen in the G step). In ``replace`` mode the trick provides G's
    objective, and the other plugins' terms are added to it.
    """

    name = "feature_matching"
    needs = frozenset({"discriminator.features"})

    def __init__(self, norm: str = "l2", mode: str = "replace", weight: float = 1.0) -> None:
        if norm not in NORMS:
            raise GanlabError(f"feature_matching: unknown norm '{norm}'; valid: {', '.join(NORMS)}")
        if mode not in MODES:
            raise GanlabError(f"feature_matching: unknown mode '{mode}'; valid: {', '.join(MODES)}")
        if not weight >= 0:
            raise GanlabError(f"feature_matching: weight must be >= 0, got {weight}")
        if mode == "replace" and weight != 1.0:
            raise GanlabError(
                "feature_matching: weight applies to mode=add only (replace uses FM alone)"
            )
        self.norm = norm
        self.mode = mode
        self.weight = float(weight)
        self.provides = frozenset({"generator.objective"} if mode == "replace" else ())

    def cost(self, step: GStep) -> Tensor:
        """The feature-matching term of this G step."""
        with torch.no_grad():
            real_in = step.d_input(step.real)
            real_features = step.features(real_in, step.real_condition())
        fake_features = step.features(step.fake, step.fake_condition)
        return feature_matching_cost(real_features, fake_features, self.norm)

    def g_objective(self, step: GStep) -> Tensor | None:
        return self.cost(step) if self.mode == "replace" else None

    def g_cost(self, cost: Tensor, step: GStep) -> Tensor:
        return cost if self.mode == "replace" else cost + self.weight * self.cost(step)
