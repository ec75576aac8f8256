"""Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", §3.1)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.tricks.base import GStep, Trick

if TYPE_CHECKING:
    from ganlab.adapter.module import GANModule

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
    (passed through the run's ``d_input`` transforms, like every input of D); fake features
    keep the graph to G. D's parameters get no gradient (they are frozen in the G step).
    In ``replace`` mode this trick must come before any trick that adds to G's cost, or it
    would drop their terms; ``setup`` checks it.
    """

    name = "feature_matching"

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

    @property
    def exclusive_hooks(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({"g_objective"}) if self.mode == "replace" else frozenset()

    def setup(self, module: GANModule) -> None:
        if not hasattr(module.discriminator, "features"):
            raise GanlabError(
                "feature_matching needs a discriminator with a features() method; "
                f"got {type(module.discriminator).__name__}"
            )
        if self.mode != "replace":
            return
        before: list[str] = []
        for trick in getattr(module, "tricks", ()):
            if trick is self:
                break
            if type(trick).g_cost is not Trick.g_cost:
                before.append(trick.name)
        if before:
            raise GanlabError(
                "feature_matching (mode=replace) replaces G's cost, so it must come before "
                f"{', '.join(before)} in tricks=[...]"
            )

    def g_cost(self, cost: Tensor, step: GStep, module: GANModule) -> Tensor:
        disc = module.discriminator
        with torch.no_grad():
            real_in = module.tricks.d_input(step.real, step.iteration)
            real_features = disc.features(real_in)
        fm = feature_matching_cost(real_features, disc.features(step.fake), self.norm)
        if self.mode == "replace":
            return fm
        return cost + self.weight * fm
