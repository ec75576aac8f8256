"""Gradient penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Alg. 1)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.core.plugin import Plugin
from ganlab.core.step import DStep


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = eps*x + (1-eps)*x_fake (Gulrajani 2017, Alg. 1).

    ``eps ~ U[0, 1]`` is drawn once per sample (dim 0) and broadcast over all other dims;
    the gradient norm is taken over all non-batch dims. The graph is kept
    (``create_graph=True``) so the penalty is differentiable w.r.t. D's parameters.
    Both inputs are detached, as the penalty trains D only. The sum-over-batch trick used for
    the per-sample gradients requires D to treat samples independently (no batch norm in
    the critic, as the paper says). Without weight (lambda); multiply by it.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {real.shape} and {fake.shape}"
        )
    if real.dim() == 0 or real.shape[0] == 0:
        raise ValueError("gradient_penalty needs a non-empty batch along dim 0")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    draw_device = generator.device if generator is not None else real.device
    eps = torch.rand(shape, generator=generator, device=draw_device, dtype=real.dtype)
    eps = eps.to(real.device)
    with torch.enable_grad():
        x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
        out = discriminator(x_hat)
        (grads,) = torch.autograd.grad(
            outputs=out,
            inputs=x_hat,
            grad_outputs=torch.ones_like(out),
            create_graph=True,
        )
        norms = torch.linalg.vector_norm(grads.flatten(1), ord=2, dim=1)
        return ((norms - 1.0) ** 2).mean()


class GradientPenalty(Plugin):
    """D's cost gets ``weight * E[(||grad_x D(x_hat)||_2 - 1)^2]``, ``x_hat`` uniform on the
    segments between D's real and fake inputs (:func:`gradient_penalty`).

    The gradient is that of D's output (the logit) with the real data's condition, so the
    penalty works for conditional runs too. Needs a per-sample critic (no batch norm in D).
    """

    name = "gradient_penalty"
    kind = "regulariser"
    provides = frozenset({"discriminator.gradient_penalty"})
    excludes = frozenset({"discriminator.batch_norm"})

    def __init__(self, weight: float = 10.0) -> None:
        if not weight >= 0:
            raise GanlabError(f"gradient_penalty: weight must be >= 0, got {weight}")
        self.weight = float(weight)

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        def critic(x: Tensor) -> Tensor:
            return step.critic(x, step.real_condition)

        return cost + self.weight * gradient_penalty(critic, step.real, step.fake)
