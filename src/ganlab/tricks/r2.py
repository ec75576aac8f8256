"""R2 regularization (Mescheder et al. 2018, "Which Training Methods for GANs do actually
Converge?", eq. 10): the gradient penalty of R1 on generated data instead of real data."""

from __future__ import annotations

from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.tricks.base import DStep, Trick
from ganlab.tricks.r1 import r1_penalty


class R2(Trick):
    """D's cost gets ``(gamma / 2) E_z ||grad_x D(x)||^2`` at the fake samples ``x = G(z)``."""

    name = "r2"
    excludes = frozenset({"discriminator.batch_norm"})

    def __init__(self, gamma: float = 10.0) -> None:
        if not gamma >= 0:
            raise GanlabError(f"r2: gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        penalty = r1_penalty(lambda x: step.critic(x, step.fake_condition), step.fake)
        return cost + (self.gamma / 2.0) * penalty
