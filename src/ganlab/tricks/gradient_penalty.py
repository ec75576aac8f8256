"""Gradient penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Alg. 1),
as a term added to the discriminator cost of any loss."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.losses import WGANGP, gradient_penalty, require_per_sample_critic
from ganlab.tricks.base import DStep, Trick

if TYPE_CHECKING:
    from ganlab.adapter.module import GANModule


class GradientPenalty(Trick):
    """D's cost gets ``weight * E[(||grad_x D(x_hat)||_2 - 1)^2]``, ``x_hat`` uniform on the
    segments between D's real and fake inputs (see :func:`ganlab.losses.gradient_penalty`).

    The gradient is that of D's output (the logit). Refused with the ``wgan_gp`` loss, which
    already has this penalty.
    """

    name = "gradient_penalty"

    def __init__(self, weight: float = 10.0) -> None:
        if not weight >= 0:
            raise GanlabError(f"gradient_penalty: weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def setup(self, module: GANModule) -> None:
        if isinstance(module.loss, WGANGP):
            raise GanlabError(
                "gradient_penalty: loss wgan_gp already has a gradient penalty; "
                "use loss=wgan or drop the trick"
            )
        require_per_sample_critic(module.discriminator, "trick gradient_penalty")

    def d_cost(self, cost: Tensor, step: DStep, module: GANModule) -> Tensor:
        penalty = gradient_penalty(module.discriminator, step.real, step.fake)
        return cost + self.weight * penalty
