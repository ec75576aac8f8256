"""feature_matching through the real step: G's cost is ||E f(x) - E f(G(z))||^2 on D's
features; D's update is the plain one."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from nets_helpers import LinearCritic
from plugin_helpers import gstep, setup
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module
from ganlab.core.errors import GanlabError
from ganlab.core.family import TrainContext
from ganlab.core.plugin import PluginList
from ganlab.tricks.feature_matching import FeatureMatching
from ganlab.tricks.historical_averaging import HistoricalAveraging
from ganlab.tricks.instance_noise import InstanceNoise
from tricks.runs import baseline, differ, ns_g_cost, players, run, scalar
from tricks.unit_helpers import (
    TOL32,
    TOL64,
)


def test_feature_matching_replaces_the_generator_cost(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    fm = run(make_cfg, tmp_path / "fm", "tricks=[feature_matching]")
    # One iteration: D's step comes first and does not involve the trick.
    assert not differ(players(base.final, "discriminator."), players(fm.final, "discriminator."))
    assert differ(players(base.final, "generator."), players(fm.final, "generator."))
    # G's step used D after its update (the final D) on the iteration's real batch.
    disc = fm.module.discriminator
    real, fake = fm.d_calls[0].input, fm.g_calls[1].output
    with torch.no_grad():
        expected = (disc.features(real).mean(0) - disc.features(fake).mean(0)).pow(2).sum()
        adversarial = ns_g_cost(disc(fake))
    logged = scalar(fm.logged[1]["train/g_loss"])
    assert_close(logged, expected)
    assert not torch.allclose(logged, adversarial)
    assert_close(scalar(base.logged[1]["train/g_loss"]), ns_g_cost(base.d_calls[2].output))


# -- formulas by hand -------------------------------------------
# Identity features: E f(real) = [2, 3], E f(fake) = [1, 0.5], difference [1, 2.5].
FM_REAL = [[1.0, 2.0], [3.0, 4.0]]
FM_FAKE = [[0.0, 0.0], [2.0, 1.0]]


def fm_cost(trick: FeatureMatching, cost: float = 123.0) -> tuple[Tensor, Tensor]:
    critic = LinearCritic([0.5, -1.0])
    module = setup(trick, discriminator=critic).players
    real = torch.tensor(FM_REAL, dtype=torch.float64, requires_grad=True)
    fake = torch.tensor(FM_FAKE, dtype=torch.float64, requires_grad=True)
    step = gstep(real, fake, critic(fake), players_=module, plugins=[trick])
    base = torch.tensor(cost, dtype=torch.float64)
    objective = trick.g_objective(step)
    out = trick.g_cost(base if objective is None else objective, step)
    (grad_fake,) = torch.autograd.grad(out, fake)
    assert real.grad is None
    return out.detach(), grad_fake


def test_feature_matching_l2_hand_value() -> None:
    cost, grad = fm_cost(FeatureMatching(norm="l2"))
    assert_close(cost, torch.tensor(1.0 + 6.25, dtype=torch.float64), **TOL64)
    # d/d fake_i of ||m_r - m_f||^2 = -2 (m_r - m_f) / B = -[1, 2.5] for each sample.
    assert_close(grad, torch.tensor([[-1.0, -2.5]] * 2, dtype=torch.float64), **TOL64)


def test_feature_matching_l1_hand_value() -> None:
    cost, grad = fm_cost(FeatureMatching(norm="l1"))
    assert_close(cost, torch.tensor((1.0 + 2.5) / 2, dtype=torch.float64), **TOL64)
    # d/d fake_i of mean_a |m_r - m_f|_a = -sign(diff) / (A B) = -1/4.
    assert_close(grad, torch.full((2, 2), -0.25, dtype=torch.float64), **TOL64)


def test_feature_matching_replace_vs_add() -> None:
    replaced, _ = fm_cost(FeatureMatching(mode="replace"), cost=123.0)
    added, _ = fm_cost(FeatureMatching(mode="add", weight=0.5), cost=123.0)
    assert float(replaced) == pytest.approx(7.25, rel=1e-12)
    assert float(added) == pytest.approx(123.0 + 0.5 * 7.25, rel=1e-12)
    assert FeatureMatching(mode="replace").provides == frozenset({"generator.objective"})
    assert FeatureMatching(mode="add").provides == frozenset()
    with pytest.raises(GanlabError, match="mode=add only"):
        FeatureMatching(mode="replace", weight=2.0)


def test_feature_matching_real_features_see_the_d_input_transforms() -> None:
    """Real data reaches D's features through the run's d_input (here instance noise), like
    the fake batch, which GStep hands over already transformed."""
    noise, fm = InstanceNoise(sigma=0.5, schedule="constant", seed=3), FeatureMatching()
    critic = LinearCritic([1.0, 1.0])
    module = setup(fm, discriminator=critic).players
    real = torch.tensor(FM_REAL, dtype=torch.float64)
    fake = torch.tensor(FM_FAKE, dtype=torch.float64)
    cost = fm.g_objective(gstep(real, fake, critic(fake), players_=module, plugins=[noise, fm]))
    drawn = 0.5 * torch.randn(real.shape, generator=torch.Generator().manual_seed(3),
                              dtype=torch.float64)
    expected = ((real + drawn).mean(0) - fake.mean(0)).pow(2).sum()
    assert_close(cost.detach(), expected, **TOL64)


def test_feature_matching_replace_keeps_the_other_plugins_terms() -> None:
    """replace mode provides G's objective; terms that other plugins add to G's cost are
    added to it whatever the order of tricks=[...] (PluginList runs g_objective first)."""
    ha, fm = HistoricalAveraging(weight=2.0), FeatureMatching()
    d, g = LinearCritic([1.0, 1.0]), nn.Linear(1, 2).double()
    module = setup(ha, discriminator=d, generator=g).players
    with torch.no_grad():
        g.weight.add_(1.0)  # G moved: historical averaging adds 2 * ||1||^2 = 2 * 2 = 4
    real = torch.tensor(FM_REAL, dtype=torch.float64)
    fake = torch.tensor(FM_FAKE, dtype=torch.float64)
    for order in ([ha, fm], [fm, ha]):
        chain = PluginList(order)
        step = gstep(real, fake, d(fake), players_=module, plugins=order)
        cost = chain.g_cost(chain.g_objective(step), step)
        assert float(cost.detach()) == pytest.approx(7.25 + 4.0, rel=1e-12)


def test_feature_matching_generator_step_trains_g_only(make_cfg) -> None:
    """In GANModule's real G step: gradients reach G, none reach D's parameters."""
    cfg = make_cfg("tricks=[feature_matching]")
    module = build_module(cfg, build_datamodule(cfg))
    module.manual_backward = lambda cost: cost.backward()  # no Trainer attached
    opt = torch.optim.SGD(module.generator.parameters(), lr=0.0)
    real = torch.randn(16, 2)
    captured: list[Tensor] = []
    trick = next(p for p in module.family.plugins if p.name == "feature_matching")
    g_objective = trick.g_objective

    def spy(step: Any) -> Tensor:
        out = g_objective(step)
        with torch.no_grad():
            ref = (module.discriminator.features(real).mean(0)
                   - module.discriminator.features(step.fake).mean(0)).pow(2).sum()
        captured.extend([out.detach(), ref])
        return out

    trick.g_objective = spy  # type: ignore[method-assign]
    ctx = TrainContext(0, 1, {"generator": opt}, lambda c: c.backward(), torch.Generator())
    cost = module.family.generator_step(real, None, ctx)
    assert_close(cost.detach(), captured[1], **TOL32)
    assert all(p.grad is None for p in module.discriminator.parameters())
    assert all(p.grad is not None for p in module.generator.parameters())
    assert any(float(p.grad.abs().sum()) > 0 for p in module.generator.parameters())
