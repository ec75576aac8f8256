"""The gradient penalty (``src/ganlab/regularisers/gradient_penalty.py``; Gulrajani et al. 2017,
Algorithm 1) against closed forms on linear and quadratic critics, and its plugin's weight."""

from __future__ import annotations

import math

import pytest
import torch
from plugin_helpers import dstep, setup
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.core.errors import GanlabError
from ganlab.regularisers.gradient_penalty import GradientPenalty, gradient_penalty

TOL64 = {"atol": 1e-12, "rtol": 1e-12}


class LinearCritic(nn.Module):
    """D(x) = w . flatten(x): grad_x D = w everywhere, so the penalty is (||w|| - 1)^2."""

    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.w


def norm3_weights(n: int) -> Tensor:
    w = torch.arange(1, n + 1, dtype=torch.float64)
    return 3.0 * w / w.norm()


def test_gradient_penalty_linear_critic_exact() -> None:
    critic = LinearCritic(norm3_weights(16))
    gen = torch.Generator().manual_seed(3)
    real = torch.randn(5, 16, generator=gen, dtype=torch.float64)
    fake = torch.randn(5, 16, generator=gen, dtype=torch.float64)
    four = torch.tensor(4.0, dtype=torch.float64)  # (3 - 1)^2
    assert_close(gradient_penalty(critic, real, fake), four, **TOL64)
    plugin = GradientPenalty(weight=10.0)
    players = setup(plugin, discriminator=critic).players
    base = torch.tensor(0.25, dtype=torch.float64)
    step = dstep(critic(real), critic(fake), real, fake, players_=players)
    assert_close(plugin.d_cost(base, step), base + 10.0 * four, **TOL64)
    assert GradientPenalty().weight == 10.0
    with pytest.raises(GanlabError, match="^gradient_penalty: weight must be >= 0, got -1.0$"):
        GradientPenalty(weight=-1.0)


def test_gradient_penalty_differentiable_wrt_critic() -> None:
    """d/dw [lambda (||w|| - 1)^2] = lambda * 2 (||w|| - 1) * w / ||w||."""
    w0 = norm3_weights(6)
    critic = LinearCritic(w0)
    real = torch.randn(4, 6, dtype=torch.float64)
    fake = torch.randn(4, 6, dtype=torch.float64)
    lam = 7.5
    plugin = GradientPenalty(weight=lam)
    zero = torch.zeros((), dtype=torch.float64)
    penalty = plugin.d_cost(zero, dstep(critic(real), critic(fake), real, fake,
                                        players_=setup(plugin, discriminator=critic).players))
    assert penalty.requires_grad
    penalty.backward()
    expected = lam * 2.0 * (3.0 - 1.0) * w0 / 3.0
    assert critic.w.grad is not None
    assert_close(critic.w.grad, expected, **TOL64)


def test_gradient_penalty_image_shaped_inputs() -> None:
    critic = LinearCritic(torch.full((16,), 0.75, dtype=torch.float64))  # ||w|| = sqrt(16 * 9/16)
    real = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    fake = torch.randn(3, 1, 4, 4, dtype=torch.float64)
    assert_close(gradient_penalty(critic, real, fake), torch.tensor(4.0).double(), **TOL64)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(8, 1)).double()
    penalty = gradient_penalty(conv, real, fake)
    assert penalty.ndim == 0 and torch.isfinite(penalty)
    penalty.backward()
    # The last bias does not change grad_x D, so it gets no gradient; the weights do.
    for p in (conv[0].weight, conv[0].bias, conv[3].weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


class RecordingQuadraticCritic(nn.Module):
    """D(x) = 1/2 ||x||^2 per sample (grad = x); remembers the interpolate it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        self.seen = x.detach().clone()
        return 0.5 * (x**2).flatten(1).sum(1)


def test_gradient_penalty_eps_per_sample_and_norm_per_sample() -> None:
    critic = RecordingQuadraticCritic()
    shape = (8, 3, 2, 2)
    real = torch.full(shape, 2.0, dtype=torch.float64)
    fake = torch.zeros(shape, dtype=torch.float64)
    penalty = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(4))
    assert critic.seen is not None
    eps = critic.seen[:, 0, 0, 0] / 2.0  # x_hat = eps * 2 + (1 - eps) * 0
    # One eps per sample, broadcast over every non-batch dim; eps in [0, 1], not all equal.
    assert_close(critic.seen, (2.0 * eps).view(8, 1, 1, 1).expand(shape), atol=0.0, rtol=0.0)
    assert ((eps >= 0) & (eps <= 1)).all()
    assert eps.unique().numel() == 8
    # ||grad|| = ||x_hat_i|| = 2 eps_i sqrt(12), over all 12 non-batch entries.
    expected = ((2.0 * eps * math.sqrt(12.0) - 1.0) ** 2).mean()
    assert_close(penalty, expected, **TOL64)


def test_gradient_penalty_seeded_generator_reproducible() -> None:
    critic = RecordingQuadraticCritic()
    real = torch.randn(6, 5, dtype=torch.float64)
    fake = torch.randn(6, 5, dtype=torch.float64)

    def run(seed: int) -> Tensor:
        return gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(seed))

    assert_close(run(5), run(5), atol=0.0, rtol=0.0)
    assert not torch.equal(run(5), run(6))


def test_gradient_penalty_trains_critic_only_and_works_under_no_grad() -> None:
    g_param = nn.Parameter(torch.ones(4, 6, dtype=torch.float64))
    fake = g_param * 0.5  # attached to a "generator" on purpose
    real = torch.randn(4, 6, dtype=torch.float64)
    # grad_x D = x_hat for this critic, so the penalty would reach g_param if not detached.
    penalty = gradient_penalty(RecordingQuadraticCritic(), real, fake)
    assert penalty.requires_grad
    penalty.backward()
    assert g_param.grad is None
    critic = LinearCritic(norm3_weights(6))
    with torch.no_grad():
        inside = gradient_penalty(critic, real, fake.detach())
    assert_close(inside.detach(), torch.tensor(4.0).double(), **TOL64)


def test_gradient_penalty_rejects_mismatched_shapes() -> None:
    critic = LinearCritic(norm3_weights(4))
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(critic, torch.zeros(2, 4), torch.zeros(3, 4))
