"""gradient_penalty through the real step: D's cost gets weight * E[(||grad D(x_hat)|| - 1)^2]
with x_hat between D's real and fake inputs."""

from __future__ import annotations

import pytest
import torch
from nets_helpers import LinearCritic
from plugin_helpers import dstep, setup
from torch import nn
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module
from ganlab.core.errors import GanlabError
from ganlab.losses import Hinge
from ganlab.regularisers.gradient_penalty import GradientPenalty
from ganlab.tricks.r1 import R1
from tricks.runs import baseline, differ, ns_d_cost, players, run, scalar
from tricks.unit_helpers import (
    TOL64,
)


def test_gradient_penalty_adds_its_term_to_the_discriminator_cost(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    gp = run(make_cfg, tmp_path / "gp", "tricks=[gradient_penalty]",
             "tricks.gradient_penalty.weight=3.0")
    for prefix in ("generator.", "discriminator."):
        assert differ(players(base.final, prefix), players(gp.final, prefix))
    real, fake, mixed = (gp.d_calls[i] for i in range(3))  # D's step: real, fake, x_hat
    # x_hat = eps * real + (1 - eps) * fake, one eps in [0, 1] per sample.
    direction = real.input - fake.input
    eps = ((mixed.input - fake.input) * direction).sum(1) / direction.pow(2).sum(1)
    assert bool(((eps >= 0) & (eps <= 1)).all()) and float(eps.std()) > 0.1
    assert_close(mixed.input, fake.input + eps[:, None] * direction)
    # The penalty of D as built (before its first update) at those points.
    x = mixed.input.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(gp.d0(x).sum(), x)
    penalty = (grad.norm(dim=1) - 1).pow(2).mean()
    logged = scalar(gp.logged[1]["train/d_loss"])
    assert_close(logged, ns_d_cost(real.output, fake.output) + 3.0 * penalty)
    assert float(penalty) > 1e-3


# -- formulas by hand -------------------------------------------
def test_gradient_penalty_trick_linear_critic() -> None:
    critic = LinearCritic([3.0, 4.0], b=0.7)  # ||w|| = 5: penalty (5 - 1)^2 = 16 everywhere
    trick = GradientPenalty(weight=10.0)
    module = setup(trick, discriminator=critic).players
    gen = torch.Generator().manual_seed(5)
    real = torch.randn(32, 2, generator=gen, dtype=torch.float64)
    fake = torch.randn(32, 2, generator=gen, dtype=torch.float64)
    base = torch.tensor(1.25, dtype=torch.float64)
    cost = trick.d_cost(base, dstep(critic(real), critic(fake), real, fake, players_=module))
    assert_close(cost - base, torch.tensor(160.0, dtype=torch.float64), **TOL64)
    # d/dw of 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w|| = 80 (0.6, 0.8) = (48, 64).
    (grad,) = torch.autograd.grad(cost, critic.w)
    assert_close(grad, torch.tensor([48.0, 64.0], dtype=torch.float64), **TOL64)


def test_gradient_penalty_trick_refused_with_wgan_gp(make_cfg) -> None:
    cfg = make_cfg("loss=wgan_gp", "tricks=[gradient_penalty]")
    with pytest.raises(GanlabError, match="^regulariser 'gradient_penalty' and regulariser "
                       "'gradient_penalty' both provide discriminator.gradient_penalty; use "
                       "only one of them$"):
        build_module(cfg, build_datamodule(cfg))
    cfg = make_cfg("loss=wgan", "tricks=[gradient_penalty]")
    build_module(cfg, build_datamodule(cfg))


@pytest.mark.parametrize("trick", [GradientPenalty(), R1()])
def test_penalty_tricks_refuse_a_batch_norm_critic(trick) -> None:
    critic = nn.Sequential(nn.Linear(2, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    with pytest.raises(GanlabError, match=rf"^{trick.kind} '{trick.name}' cannot be used with "
                       r"discriminator 'discriminator' \(discriminator.batch_norm\)$"):
        setup(trick, loss=Hinge(), discriminator=critic)
    setup(trick, loss=Hinge(), discriminator=nn.Linear(2, 1))
