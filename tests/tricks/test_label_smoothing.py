"""label_smoothing through the real step: D's cost gets 1/2 (1 - alpha) E[l_real]."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from plugin_helpers import dstep, setup
from torch import Tensor
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module
from ganlab.core.errors import GanlabError
from ganlab.losses import LSGAN, WGAN, Hinge, Minimax, MLGame, NonSaturating
from ganlab.tricks.label_smoothing import LabelSmoothing
from tricks.runs import baseline, differ, ns_d_cost, players, run, scalar
from tricks.unit_helpers import (
    LN3,
    TOL32,
    TOL64,
)


def test_label_smoothing_changes_the_discriminator_cost(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    smooth = run(make_cfg, tmp_path / "smooth", "tricks=[label_smoothing]",
                 "tricks.label_smoothing.alpha=0.7")
    assert differ(players(base.final, "discriminator."), players(smooth.final, "discriminator."))
    assert differ(players(base.final, "generator."), players(smooth.final, "generator."))
    real, fake = smooth.d_calls[0].output, smooth.d_calls[1].output  # D's first step
    logged = scalar(smooth.logged[1]["train/d_loss"])
    assert_close(logged, ns_d_cost(real, fake) + 0.5 * 0.3 * real.mean())
    # Without the trick the same recomputation gives the plain cost (the check can fail).
    real, fake = base.d_calls[0].output, base.d_calls[1].output
    assert_close(scalar(base.logged[1]["train/d_loss"]), ns_d_cost(real, fake))
    assert float(real.mean()) != 0.0


# -- formulas by hand -------------------------------------------
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
