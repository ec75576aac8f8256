"""gradient_penalty through the real step: D's cost gets weight * E[(||grad D(x_hat)|| - 1)^2]
with x_hat between D's real and fake inputs."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from tricks.runs import baseline, differ, ns_d_cost, players, run, scalar


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
