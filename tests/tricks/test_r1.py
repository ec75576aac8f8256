"""r1 through the real step: D's cost gets (gamma / 2) E ||grad_x D(x)||^2 on real data."""

from __future__ import annotations

import pytest
import torch
from nets_helpers import LinearCritic
from plugin_helpers import dstep, setup
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.core.errors import GanlabError
from ganlab.tricks.r1 import R1
from tricks.runs import baseline, differ, ns_d_cost, players, run, scalar
from tricks.unit_helpers import (
    TOL64,
    HalfSquare,
)


def test_r1_adds_its_penalty_to_the_discriminator_cost(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    r1 = run(make_cfg, tmp_path / "r1", "tricks=[r1]", "tricks.r1.gamma=4.0")
    for prefix in ("generator.", "discriminator."):
        assert differ(players(base.final, prefix), players(r1.final, prefix))
    real, fake, again = (r1.d_calls[i] for i in range(3))  # D's step; the penalty's own call
    assert torch.equal(again.input, real.input)
    x = real.input.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(r1.d0(x).sum(), x)  # D before its first update
    penalty = grad.pow(2).sum(1).mean()
    assert float(penalty) > 1e-4
    logged = scalar(r1.logged[1]["train/d_loss"])
    assert_close(logged, ns_d_cost(real.output, fake.output) + 2.0 * penalty)


# -- formulas by hand -------------------------------------------
def r1_cost(trick: R1, critic: nn.Module, real: Tensor, iteration: int) -> Tensor:
    module = setup(trick, discriminator=critic).players
    base = torch.tensor(0.5, dtype=torch.float64)
    return trick.d_cost(base, dstep(critic(real), critic(real), real, real, iteration,
                                    players_=module))


def test_r1_linear_critic_value_and_gradient() -> None:
    critic = LinearCritic([3.0, 4.0], b=-2.0)  # ||grad||^2 = ||w||^2 = 25
    real = torch.randn(8, 2, dtype=torch.float64)
    cost = r1_cost(R1(gamma=10.0), critic, real, 0)
    assert float(cost.detach()) == pytest.approx(0.5 + 5.0 * 25.0, rel=1e-12)
    # d/dw (gamma/2) ||w||^2 = gamma w; nothing to b.
    grad_w, grad_b = torch.autograd.grad(cost, [critic.w, critic.b], allow_unused=True)
    assert_close(grad_w, torch.tensor([30.0, 40.0], dtype=torch.float64), **TOL64)
    assert grad_b is None or float(grad_b) == 0.0


def test_r1_is_a_per_sample_mean() -> None:
    """D(x) = c/2 ||x||^2: E ||grad||^2 = c^2 E ||x||^2 = 4 * (5 + 9) / 2 = 28 with c = 2."""
    critic = HalfSquare(c=2.0)
    real = torch.tensor([[1.0, 2.0], [3.0, 0.0]], dtype=torch.float64, requires_grad=True)
    cost = r1_cost(R1(gamma=1.0), critic, real, 0)
    assert float(cost.detach()) == pytest.approx(0.5 + 0.5 * 28.0, rel=1e-12)
    # d/dc (1/2) c^2 E||x||^2 = c E||x||^2 = 14; the real input gets no gradient.
    (grad_c,) = torch.autograd.grad(cost, critic.c, retain_graph=True)
    assert float(grad_c) == pytest.approx(14.0, rel=1e-12)
    assert torch.autograd.grad(cost, real, allow_unused=True)[0] is None


def test_r1_lazy_interval() -> None:
    critic = LinearCritic([3.0, 4.0])
    real = torch.randn(4, 2, dtype=torch.float64)
    trick = R1(gamma=10.0, every=4)
    added = [float(r1_cost(trick, critic, real, t).detach()) - 0.5 for t in range(9)]
    lazy = 4 * 5.0 * 25.0  # every * (gamma / 2) * ||w||^2
    assert added == pytest.approx([lazy, 0, 0, 0, lazy, 0, 0, 0, lazy], rel=1e-12, abs=0)
    cost = r1_cost(trick, critic, real, 8)
    (grad_w,) = torch.autograd.grad(cost, critic.w)
    assert_close(grad_w, torch.tensor([120.0, 160.0], dtype=torch.float64), **TOL64)
    with pytest.raises(GanlabError, match="every"):
        R1(every=0)
