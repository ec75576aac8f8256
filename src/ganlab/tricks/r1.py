"""R1 regularization (Mescheder et al. 2018, "Which Training Methods for GANs do actually
Converge?", eq. 9), with the lazy regularization of Karras et al. 2020 (StyleGAN2, §3.1, App. B)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.tricks.base import DStep, Trick


def r1_penalty(discriminator: Callable[[Tensor], Tensor], real: Tensor) -> Tensor:
    """``E_x ||grad_x D(x)||_2^2`` on real data, differentiable w.r.t. D's parameters.

    D is re-run on a detached copy of ``real``; the per-sample gradients come from the sum
    over the batch, so D must treat samples independently (no batch norm in D).
    """
    if real.dim() == 0 or real.shape[0] == 0:
        raise ValueError("r1 needs a non-empty batch along dim 0")
    with torch.enable_grad():
        x = real.detach().requires_grad_(True)
        out = discriminator(x)
        (grads,) = torch.autograd.grad(out.sum(), x, create_graph=True)
        return grads.flatten(1).pow(2).sum(1).mean()


class R1(Trick):
    """D's cost gets ``(gamma / 2) E_x ||grad_x D(x)||^2`` on real data.

    Lazy (``every`` > 1): only on iterations with ``iteration % every == 0``, scaled by
    ``every`` so the expected penalty per iteration is unchanged; nothing otherwise. With
    ``k`` D steps per iteration, every D step of such an iteration gets it.
    """

    name = "r1"
    excludes = frozenset({"discriminator.batch_norm"})

    def __init__(self, gamma: float = 10.0, every: int = 1) -> None:
        if not gamma >= 0:
            raise GanlabError(f"r1: gamma must be >= 0, got {gamma}")
        if isinstance(every, bool) or int(every) != every or every < 1:
            raise GanlabError(f"r1: every must be a positive integer, got {every}")
        self.gamma = float(gamma)
        self.every = int(every)

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        if step.iteration % self.every != 0:
            return cost
        penalty = r1_penalty(lambda x: step.critic(x, step.real_condition), step.real)
        return cost + self.every * (self.gamma / 2.0) * penalty
