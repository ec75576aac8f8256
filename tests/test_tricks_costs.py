"""The cost tricks against hand computations and closed forms, and one short real run each.

Tricks: label_smoothing, instance_noise, feature_matching, historical_averaging,
gradient_penalty, r1 (``src/ganlab/tricks``; formulas in each module's docstring).
"""

from __future__ import annotations

import io
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from nets_helpers import LinearCritic
from plugin_helpers import dstep, gstep, setup
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.core.errors import GanlabError
from ganlab.core.family import TrainContext
from ganlab.core.plugin import PluginList
from ganlab.losses import LSGAN, WGAN, Hinge, Minimax, MLGame, NonSaturating
from ganlab.regularisers.gradient_penalty import GradientPenalty
from ganlab.tricks.feature_matching import FeatureMatching
from ganlab.tricks.historical_averaging import HistoricalAveraging
from ganlab.tricks.instance_noise import InstanceNoise
from ganlab.tricks.label_smoothing import LabelSmoothing
from ganlab.tricks.r1 import R1

LN3 = math.log(3.0)
TOL32 = {"atol": 1e-6, "rtol": 1e-6}
TOL64 = {"atol": 1e-12, "rtol": 1e-12}


class HalfSquare(nn.Module):
    """D(x) = c/2 ||x||^2 per sample: grad_x D = c x, so ||grad||^2 = c^2 ||x||^2."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * self.c * x.flatten(1).pow(2).sum(1)


def roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    """Through torch.save / torch.load(weights_only=True), as a checkpoint would."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


# --- label smoothing -----------------------------------------------------------------------


@pytest.mark.parametrize("loss_cls", [Minimax, NonSaturating, MLGame])
@pytest.mark.parametrize("alpha", [0.9, 0.7, 1.0])
def test_label_smoothing_is_bce_with_real_target_alpha(loss_cls, alpha: float) -> None:
    gen = torch.Generator().manual_seed(3)
    real = 4 * torch.randn(64, generator=gen, dtype=torch.float64)
    fake = 4 * torch.randn(64, generator=gen, dtype=torch.float64)
    trick = LabelSmoothing(alpha=alpha)
    setup(trick, loss=loss_cls())
    cost = trick.d_cost(loss_cls().d_loss(real, fake), dstep(real, fake))
    expected = 0.5 * F.binary_cross_entropy_with_logits(
        real, torch.full_like(real, alpha)
    ) + 0.5 * F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    assert_close(cost, expected, **TOL64)


def test_label_smoothing_hand_value() -> None:
    # D(x) = [1/2, 3/4] on real, D(G(z)) = [1/4, 1/2] on fake, alpha = 0.9.
    real, fake = torch.tensor([0.0, LN3]), torch.tensor([-LN3, 0.0])
    a = 0.9
    real_term = -0.25 * sum(a * math.log(d) + (1 - a) * math.log(1 - d) for d in (0.5, 0.75))
    fake_term = -0.25 * (math.log(0.75) + math.log(0.5))
    cost = LabelSmoothing(a).d_cost(NonSaturating().d_loss(real, fake), dstep(real, fake))
    assert_close(cost, torch.tensor(real_term + fake_term), **TOL32)
    # The added term is 1/2 (1 - a) E[l_real] = 1/2 * 0.1 * ln3 / 2.
    assert real_term - (-0.25 * (math.log(0.5) + math.log(0.75))) == pytest.approx(
        0.025 * LN3, rel=1e-12
    )


def test_label_smoothing_leaves_fake_term_alone() -> None:
    gen = torch.Generator().manual_seed(4)
    real = 3 * torch.randn(16, generator=gen, dtype=torch.float64)
    loss, trick = NonSaturating(), LabelSmoothing(0.8)
    diffs = []
    for scale in (0.0, 1.0, 5.0):
        fake = (scale * torch.randn(16, generator=gen, dtype=torch.float64)).requires_grad_(True)
        plain = loss.d_loss(real, fake)
        smoothed = trick.d_cost(plain, dstep(real, fake))
        diffs.append(float((smoothed - plain).detach()))
        (g_plain,) = torch.autograd.grad(plain, fake, retain_graph=True)
        (g_smooth,) = torch.autograd.grad(smoothed, fake)
        assert torch.equal(g_plain, g_smooth)
        # d/dl_fake of 1/2 E softplus(l) = sigmoid(l) / (2 B): the fake target is still 0.
        assert_close(g_smooth, torch.sigmoid(fake.detach()) / 32, **TOL64)
    expected = 0.5 * 0.2 * float(real.mean())
    assert diffs == pytest.approx([expected] * 3, rel=1e-12, abs=1e-14)
    # d/dl_real = (sigmoid(l) - alpha) / (2 B): the real target is alpha.
    real_leaf = real.clone().requires_grad_(True)
    fake = torch.zeros(16, dtype=torch.float64)
    cost = trick.d_cost(loss.d_loss(real_leaf, fake), dstep(real_leaf, fake))
    (g_real,) = torch.autograd.grad(cost, real_leaf)
    assert_close(g_real, (torch.sigmoid(real) - 0.8) / 32, **TOL64)


@pytest.mark.parametrize("alpha", [0.9, 0.75, 1.0])
def test_label_smoothing_optimal_discriminator(alpha: float) -> None:
    """On a 3-point space with p_data = (1/2, 1/4, 1/4), p_g = (1/4, 1/4, 1/2), the D that
    minimises the smoothed cost is D*(x) = alpha p_data / (p_data + p_g) = alpha (2/3, 1/2, 1/3).

    Minibatches hold the points in exact proportion, so batch means are exact expectations;
    D is a free logit per point (the optimum is pointwise).
    """
    real_idx = torch.tensor([0, 0, 1, 2])
    fake_idx = torch.tensor([0, 1, 2, 2])
    logits = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    loss, trick = NonSaturating(), LabelSmoothing(alpha)

    def objective() -> Tensor:
        real, fake = logits[real_idx], logits[fake_idx]
        return trick.d_cost(loss.d_loss(real, fake), dstep(real, fake))

    # Newton's method per point (the cost is separable and strictly convex in each logit).
    for _ in range(50):
        (grad,) = torch.autograd.grad(objective(), logits, create_graph=True)
        hess = torch.stack([torch.autograd.grad(grad[i], logits, retain_graph=True)[0][i]
                            for i in range(3)])
        with torch.no_grad():
            logits -= grad.detach() / hess.detach()
    expected = alpha * torch.tensor([2 / 3, 1 / 2, 1 / 3], dtype=torch.float64)
    assert_close(torch.sigmoid(logits.detach()), expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("loss", [LSGAN(), WGAN(), Hinge()])
def test_label_smoothing_refuses_other_losses(loss) -> None:
    with pytest.raises(GanlabError, match=r"^trick 'label_smoothing' needs loss.cross_entropy, "
                       r"which loss 'loss' does not provide$"):
        setup(LabelSmoothing(), loss=loss)


def test_label_smoothing_refused_from_config(make_cfg) -> None:
    cfg = make_cfg("loss=hinge", "tricks=[label_smoothing]")
    with pytest.raises(GanlabError, match="^trick 'label_smoothing' needs loss.cross_entropy, "
                       "which loss 'hinge' does not provide$"):
        build_module(cfg, build_datamodule(cfg))


def test_label_smoothing_alpha_range() -> None:
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(GanlabError, match="alpha"):
            LabelSmoothing(bad)


# --- instance noise ------------------------------------------------------------------------


def test_instance_noise_schedule() -> None:
    linear = InstanceNoise(sigma=0.2, anneal_iterations=100)
    hand = {0: 0.2, 25: 0.15, 50: 0.1, 99: 0.002, 100: 0.0, 250: 0.0}
    assert [linear.sigma_at(t) for t in hand] == pytest.approx(list(hand.values()), abs=1e-15)
    constant = InstanceNoise(sigma=0.2, anneal_iterations=100, schedule="constant")
    assert [constant.sigma_at(t) for t in hand] == [0.2] * len(hand)
    x = torch.zeros(4, 2)
    linear.d_input(x, 25)
    assert linear.log_values() == {"sigma": pytest.approx(0.15, abs=1e-15)}
    with pytest.raises(GanlabError, match="schedule"):
        InstanceNoise(schedule="cosine")


@pytest.mark.parametrize("t", [0, 50])
def test_instance_noise_statistics(t: int) -> None:
    trick = InstanceNoise(sigma=0.2, anneal_iterations=100)
    sigma_t = 0.2 * (1 - t / 100)
    n = 100_000
    x = torch.linspace(-3, 3, n, dtype=torch.float64).reshape(n // 2, 2)
    noise = (trick.d_input(x, t) - x).flatten()
    # 5 standard errors: SE(mean) = sigma / sqrt(n), SE(std) ~ sigma / sqrt(2n).
    assert abs(float(noise.mean())) < 5 * sigma_t / math.sqrt(n)
    assert abs(float(noise.std()) - sigma_t) < 5 * sigma_t / math.sqrt(2 * n)
    # Fresh noise on every call.
    assert not torch.equal(trick.d_input(x, t), trick.d_input(x, t))


def test_instance_noise_is_sigma_t_times_a_seeded_standard_normal() -> None:
    trick = InstanceNoise(sigma=0.4, anneal_iterations=8, seed=11)
    x = torch.randn(6, 3)
    reference = torch.Generator().manual_seed(11)
    for t in (0, 2, 6):  # sigma_t = 0.4, 0.3, 0.1
        expected = x + 0.4 * (1 - t / 8) * torch.randn(x.shape, generator=reference)
        assert_close(trick.d_input(x, t), expected, atol=1e-7, rtol=0)


def test_instance_noise_stops_after_annealing() -> None:
    trick = InstanceNoise(sigma=0.5, anneal_iterations=10)
    x = torch.randn(8, 3)
    assert not torch.equal(trick.d_input(x, 9), x)
    for t in (10, 11, 1000):
        assert torch.equal(trick.d_input(x, t), x)


def test_instance_noise_keeps_the_graph_to_the_input() -> None:
    x = torch.randn(5, 2, requires_grad=True)
    out = InstanceNoise(sigma=0.3).d_input(x, 0)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, torch.ones_like(x))


def test_instance_noise_state_round_trip() -> None:
    x = torch.zeros(1000, 2)
    a = InstanceNoise(sigma=0.1, seed=7)
    b = InstanceNoise(sigma=0.1, seed=7)
    assert torch.equal(a.d_input(x, 0), b.d_input(x, 0))  # same seed, same stream
    a.d_input(x, 0)
    state = roundtrip(a.state_dict())
    expected = a.d_input(x, 3)
    restored = InstanceNoise(sigma=0.1, seed=7)
    restored.load_state_dict(state)
    assert torch.equal(restored.d_input(x, 3), expected)
    # Without the state a fresh trick would repeat the first draw instead.
    assert not torch.equal(InstanceNoise(sigma=0.1, seed=7).d_input(x, 3), expected)
    # A state that was loaded but not used yet is saved again unchanged.
    again = InstanceNoise(sigma=0.1, seed=7)
    again.load_state_dict(roundtrip(restored.state_dict()))
    resaved = InstanceNoise(sigma=0.1, seed=7)
    resaved.load_state_dict(roundtrip(again.state_dict()))
    assert torch.equal(resaved.d_input(x, 3), restored.d_input(x, 3))


# --- feature matching ----------------------------------------------------------------------

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


# --- historical averaging ------------------------------------------------------------------


def scalar_net(w: float, b: float) -> nn.Linear:
    net = nn.Linear(1, 1).double()
    set_params(net, w, b)
    return net


def set_params(net: nn.Linear, w: float, b: float) -> None:
    with torch.no_grad():
        net.weight.fill_(w)
        net.bias.fill_(b)


def test_historical_averaging_mean_and_penalty_by_hand() -> None:
    d, g = scalar_net(1.0, 0.0), scalar_net(-1.0, 2.0)
    trick = HistoricalAveraging(weight=0.5)
    module = setup(trick, discriminator=d, generator=g).players  # theta_0 = (w=1, b=0)
    zero = torch.tensor(0.0, dtype=torch.float64)
    # theta_0 is part of the mean: no penalty before the first update.
    assert float(trick.d_cost(zero, dstep(zero, zero, players_=module)).detach()) == 0.0
    for w, b in [(2.0, 1.0), (4.0, -1.0), (5.0, 4.0)]:
        set_params(d, w, b)
        trick.after_d_step(dstep(zero, zero, players_=module))
    # mean w = (1 + 2 + 4 + 5) / 4 = 3, mean b = (0 + 1 - 1 + 4) / 4 = 1
    means = trick.d_mean.means
    assert float(means["weight"]) == pytest.approx(3.0, rel=1e-12)
    assert float(means["bias"]) == pytest.approx(1.0, rel=1e-12)
    assert trick.d_mean.updates == 3
    # 0.5 * ((5 - 3)^2 + (4 - 1)^2) = 6.5; gradient 2 * 0.5 * (theta - mean) = (2, 3).
    cost = trick.d_cost(zero, dstep(zero, zero, players_=module))
    assert float(cost.detach()) == pytest.approx(6.5, rel=1e-12)
    cost.backward()
    assert float(d.weight.grad) == pytest.approx(2.0, rel=1e-12)
    assert float(d.bias.grad) == pytest.approx(3.0, rel=1e-12)
    # G's mean is its own: still theta_0 of G, so G's penalty is (0.5 - -1)^2 * 0.5 after a move.
    assert trick.g_mean.updates == 0
    set_params(g, 0.5, 2.0)
    gcost = trick.g_cost(zero, gstep(zero, zero, zero, players_=module))
    assert float(gcost.detach()) == pytest.approx(0.5 * 1.5**2, rel=1e-12)
    trick.after_g_step(gstep(zero, zero, zero, players_=module))
    # G mean = (theta_0 + theta_1) / 2 = (-0.25, 2)
    assert float(trick.g_mean.means["weight"]) == pytest.approx(-0.25, rel=1e-12)
    assert float(trick.g_mean.means["bias"]) == pytest.approx(2.0, rel=1e-12)


def test_historical_averaging_state_round_trip() -> None:
    d, g = scalar_net(1.0, 0.0), scalar_net(0.0, 0.0)
    trick = HistoricalAveraging()
    module = setup(trick, discriminator=d, generator=g).players
    zero = torch.tensor(0.0, dtype=torch.float64)
    for w in (2.0, 3.0):
        set_params(d, w, w)
        trick.after_d_step(dstep(zero, zero, players_=module))
    state = roundtrip(trick.state_dict())
    other_d, other_g = scalar_net(9.0, 9.0), scalar_net(0.0, 0.0)  # fresh init, then restore
    restored = HistoricalAveraging()
    other = setup(restored, discriminator=other_d, generator=other_g).players
    restored.load_state_dict(state)
    set_params(other_d, 3.0, 3.0)
    for t, mod in ((trick, module), (restored, other)):
        set_params(mod.discriminator, 6.0, 6.0)
        t.after_d_step(dstep(zero, zero, players_=mod))
    # mean over (1, 2, 3, 6) = 3 for w; (0, 2, 3, 6) = 11/4 for b.
    for t in (trick, restored):
        assert t.d_mean.updates == 3
        assert float(t.d_mean.means["weight"]) == pytest.approx(3.0, rel=1e-12)
        assert float(t.d_mean.means["bias"]) == pytest.approx(11 / 4, rel=1e-12)


# --- gradient penalty ----------------------------------------------------------------------


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


# --- R1 ------------------------------------------------------------------------------------


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


# --- configs and real runs -----------------------------------------------------------------


def test_composed_tricks_run_every_hook(make_cfg, tmp_path) -> None:
    """Each trick alone through the real step: tests/tricks/. Composed, dropping any one of
    them (here the last, r1) changes the run."""
    names = ["instance_noise", "label_smoothing", "historical_averaging", "r1"]
    quick = ["train.iterations=4", "metrics.every_n_iterations=0"]
    cfg = make_cfg(f"tricks=[{','.join(names)}]", *quick, out=tmp_path / "all")
    assert list(cfg.tricks) == names
    assert train(cfg)["iterations"] == 4
    train(make_cfg(f"tricks=[{','.join(names[:-1])}]", *quick, out=tmp_path / "some"))
    a = torch.load(tmp_path / "all" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "some" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert not all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_stateful_tricks_resume_bit_identically(make_cfg, tmp_path) -> None:
    """instance_noise's generator and historical_averaging's means come back from the
    checkpoint: 4 + 4 iterations == 8 iterations, bit for bit."""
    common = ["tricks=[instance_noise,historical_averaging]", "tricks.instance_noise.sigma=0.5",
              "train.iterations=8", "metrics.every_n_iterations=0", "trainer.deterministic=true",
              "callbacks.checkpoint.every_n_iterations=4",
              "callbacks.checkpoint.keep_every_n_iterations=4"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    train(make_cfg(*common, out=full))
    ckpt = full / "checkpoints" / "iter_4.ckpt"
    saved = torch.load(ckpt, weights_only=True)["ganlab"]["family"]["plugins"]
    assert int(saved["historical_averaging"]["discriminator"]["updates"]) == 4
    assert saved["instance_noise"]["device"] == "cpu"
    train(make_cfg(*common, f"ckpt_path={ckpt}", out=resumed))
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    ta, tb = a["ganlab"]["family"]["plugins"], b["ganlab"]["family"]["plugins"]
    assert torch.equal(ta["instance_noise"]["state"], tb["instance_noise"]["state"])
    for player in ("discriminator", "generator"):
        ma, mb = ta["historical_averaging"][player], tb["historical_averaging"][player]
        assert int(ma["updates"]) == int(mb["updates"]) == 8
        for name in ma["means"]:
            assert torch.equal(ma["means"][name], mb["means"][name]), name
