"""Every adversarial cost in ``ganlab.losses`` against hand computations and closed forms.

Hand-computed reference logits: real l = [0, ln 3], fake l = [-ln 3, 0], i.e.
D(x) = sigmoid(l) = [1/2, 3/4] on real and D(G(z)) = [1/4, 1/2] on fake.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.losses import (
    LOSSES,
    LSGAN,
    WGAN,
    WGANGP,
    GANLoss,
    Hinge,
    Minimax,
    MLGame,
    NonSaturating,
    gradient_penalty,
    value_function,
)

LN3 = math.log(3.0)
# float32 results of O(1) computations: agree with the float64 hand values to ~1e-7.
TOL32 = {"atol": 1e-6, "rtol": 1e-6}
TOL64 = {"atol": 1e-12, "rtol": 1e-12}


def real_fake() -> tuple[Tensor, Tensor]:
    return torch.tensor([0.0, LN3]), torch.tensor([-LN3, 0.0])


def scalar(x: float) -> Tensor:
    return torch.tensor(x, dtype=torch.float32)


# --- the three tutorial games: shared J_D, three J_G ---------------------------------------

# J_D = -1/2 * 1/2 (log 1/2 + log 3/4) - 1/2 * 1/2 (log(1 - 1/4) + log(1 - 1/2))
J_D_HAND = -0.25 * (math.log(0.5) + math.log(0.75)) - 0.25 * (math.log(0.75) + math.log(0.5))


@pytest.mark.parametrize("loss_cls", [Minimax, NonSaturating, MLGame])
def test_cross_entropy_d_loss_hand_value(loss_cls: type[GANLoss]) -> None:
    real, fake = real_fake()
    assert_close(loss_cls().d_loss(real, fake), scalar(J_D_HAND), **TOL32)
    assert J_D_HAND == pytest.approx(-0.5 * math.log(0.375), rel=1e-12)


@pytest.mark.parametrize("loss_cls", [Minimax, NonSaturating, MLGame])
def test_cross_entropy_d_loss_is_half_bce(loss_cls: type[GANLoss]) -> None:
    gen = torch.Generator().manual_seed(1)
    real = 4 * torch.randn(64, generator=gen, dtype=torch.float64)
    fake = 4 * torch.randn(64, generator=gen, dtype=torch.float64)
    expected = 0.5 * F.binary_cross_entropy_with_logits(
        real, torch.ones_like(real)
    ) + 0.5 * F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    assert_close(loss_cls().d_loss(real, fake), expected, **TOL64)


def test_minimax_g_loss_hand_value() -> None:
    _, fake = real_fake()
    # +1/2 * 1/2 (log(1 - 1/4) + log(1 - 1/2))
    expected = 0.25 * (math.log(0.75) + math.log(0.5))
    assert_close(Minimax().g_loss(fake), scalar(expected), **TOL32)


def test_minimax_is_zero_sum_up_to_real_term() -> None:
    """J_G = -J_D - 1/2 E_x log D(x): exactly the negated D cost minus what G cannot change."""
    gen = torch.Generator().manual_seed(2)
    real = 3 * torch.randn(50, generator=gen, dtype=torch.float64)
    fake = 3 * torch.randn(50, generator=gen, dtype=torch.float64)
    loss = Minimax()
    log_d_real = torch.log(torch.sigmoid(real)).mean()  # naive form, fine at |l| <~ 15
    assert_close(loss.g_loss(fake), -loss.d_loss(real, fake) - 0.5 * log_d_real, **TOL64)
    # ... hence G's gradient is exactly minus D's gradient w.r.t. the fake logits.
    f1 = fake.clone().requires_grad_(True)
    f2 = fake.clone().requires_grad_(True)
    (g_grad,) = torch.autograd.grad(loss.g_loss(f1), f1)
    (d_grad,) = torch.autograd.grad(loss.d_loss(real, f2), f2)
    assert_close(g_grad, -d_grad, **TOL64)


def test_non_saturating_g_loss_hand_value() -> None:
    _, fake = real_fake()
    # -1/2 * 1/2 (log 1/4 + log 1/2) = -1/4 log(1/8) = 3/4 ln 2
    expected = -0.25 * (math.log(0.25) + math.log(0.5))
    assert expected == pytest.approx(0.75 * math.log(2.0), rel=1e-12)
    assert_close(NonSaturating().g_loss(fake), scalar(expected), **TOL32)


def test_ml_game_g_loss_hand_value() -> None:
    _, fake = real_fake()
    # -1/2 * 1/2 (exp(-ln 3) + exp(0)) = -1/4 (1/3 + 1) = -1/3
    assert_close(MLGame().g_loss(fake), scalar(-1.0 / 3.0), **TOL32)
    moderate = torch.tensor([-2.0, 1.0, 3.5], dtype=torch.float64)
    expected = -0.5 * (math.exp(-2.0) + math.exp(1.0) + math.exp(3.5)) / 3
    assert_close(MLGame().g_loss(moderate), torch.tensor(expected, dtype=torch.float64), **TOL64)


def test_ml_game_is_not_clamped() -> None:
    """exp(l) is the formula: exact in float64 at l = 100, overflows (documented) in float32."""
    big64 = torch.tensor([100.0], dtype=torch.float64)
    expected = torch.tensor(-0.5 * math.exp(100.0), dtype=torch.float64)
    assert_close(MLGame().g_loss(big64), expected, atol=0.0, rtol=1e-12)
    assert MLGame().g_loss(torch.tensor([100.0])).item() == -math.inf


def test_value_function_hand_value() -> None:
    real, fake = real_fake()
    # 1/2 (log 1/2 + log 3/4) + 1/2 (log 3/4 + log 1/2) = log(3/8)
    assert_close(value_function(real, fake), scalar(math.log(0.375)), **TOL32)
    # V = -2 J_D for the cross-entropy games (same expectations, same weights).
    assert_close(value_function(real, fake), -2 * Minimax().d_loss(real, fake), **TOL32)


# --- gradient saturation (GAN_SPEC section 2) ----------------------------------------------


def per_sample_grad(loss: GANLoss, logits: list[float]) -> Tensor:
    """dJ_G/dl_i for each sample i (J_G is a mean, so rescale by the batch size)."""
    fake = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(loss.g_loss(fake), fake)
    return grad * len(logits)


LOGITS = [0.0, -10.0, -20.0]


def test_minimax_gradient_saturates() -> None:
    """dJ_G/dl = -1/2 sigmoid(l): -1/4 at l = 0, vanishing as D(G(z)) -> 0."""
    grad = per_sample_grad(Minimax(), LOGITS)
    expected = torch.tensor(
        [-0.25, -0.5 / (1 + math.exp(10.0)), -0.5 / (1 + math.exp(20.0))], dtype=torch.float64
    )
    assert_close(grad, expected, atol=0.0, rtol=1e-10)
    assert 1e-5 < -grad[1].item() < 1e-4  # 2.27e-5
    assert 1e-10 < -grad[2].item() < 1e-8  # 1.03e-9


def test_non_saturating_gradient_does_not_saturate() -> None:
    """dJ_G/dl = -1/2 (1 - sigmoid(l)): -1/4 at l = 0, -> -1/2 as D(G(z)) -> 0.

    (GAN_SPEC's "stays near 1" is the same statement without the tutorial's factor 1/2.)
    """
    grad = per_sample_grad(NonSaturating(), LOGITS)
    expected = torch.tensor(
        [-0.25, -0.5 / (1 + math.exp(-10.0)), -0.5 / (1 + math.exp(-20.0))], dtype=torch.float64
    )
    assert_close(grad, expected, atol=0.0, rtol=1e-10)
    assert_close(grad[1:], torch.full((2,), -0.5, dtype=torch.float64), atol=1e-4, rtol=0.0)
    ratio = per_sample_grad(NonSaturating(), [-10.0]) / per_sample_grad(Minimax(), [-10.0])
    assert ratio.item() == pytest.approx(math.exp(10.0), rel=1e-9)  # (1 - s)/s = e^{-l}


def test_ml_game_gradient_value() -> None:
    """dJ_G/dl = -1/2 exp(l): -1/2 at l = 0, vanishing as D(G(z)) -> 0 like minimax."""
    grad = per_sample_grad(MLGame(), LOGITS)
    expected = torch.tensor(
        [-0.5, -0.5 * math.exp(-10.0), -0.5 * math.exp(-20.0)], dtype=torch.float64
    )
    assert_close(grad, expected, atol=0.0, rtol=1e-10)


# --- LSGAN, WGAN, hinge ------------------------------------------------------------------


def test_lsgan_default_hand_values() -> None:
    real, fake = real_fake()
    loss = LSGAN()
    assert (loss.a, loss.b, loss.c) == (0.0, 1.0, 1.0)
    # 1/2 * 1/2 ((0-1)^2 + (ln3-1)^2) + 1/2 * 1/2 ((-ln3-0)^2 + (0-0)^2)
    d_expected = 0.25 * (1.0 + (LN3 - 1.0) ** 2) + 0.25 * LN3**2
    # 1/2 * 1/2 ((-ln3-1)^2 + (0-1)^2)
    g_expected = 0.25 * ((LN3 + 1.0) ** 2 + 1.0)
    assert_close(loss.d_loss(real, fake), scalar(d_expected), **TOL32)
    assert_close(loss.g_loss(fake), scalar(g_expected), **TOL32)


def test_lsgan_custom_targets_hand_values() -> None:
    real, fake = real_fake()
    loss = LSGAN(a=-1.0, b=1.0, c=0.0)  # Mao et al.'s (-1, 1, 0) coding
    d_expected = 0.25 * (1.0 + (LN3 - 1.0) ** 2) + 0.25 * ((1.0 - LN3) ** 2 + 1.0)
    g_expected = 0.25 * (LN3**2 + 0.0)
    assert_close(loss.d_loss(real, fake), scalar(d_expected), **TOL32)
    assert_close(loss.g_loss(fake), scalar(g_expected), **TOL32)


@pytest.mark.parametrize("loss_cls", [WGAN, WGANGP])
def test_wasserstein_costs_hand_values(loss_cls: type[GANLoss]) -> None:
    real, fake = real_fake()
    loss = loss_cls()
    # E fake - E real = (-ln3 + 0)/2 - (0 + ln3)/2 = -ln 3
    assert_close(loss.d_loss(real, fake), scalar(-LN3), **TOL32)
    assert_close(loss.g_loss(fake), scalar(LN3 / 2), **TOL32)


def test_hinge_hand_values() -> None:
    real = torch.tensor([0.5, 2.0])
    fake = torch.tensor([-3.0, 0.25])
    # mean(relu(0.5), relu(-1)) + mean(relu(-2), relu(1.25)) = 0.25 + 0.625
    assert_close(Hinge().d_loss(real, fake), scalar(0.875), **TOL32)
    assert_close(Hinge().g_loss(fake), scalar(1.375), **TOL32)
    real, fake = real_fake()  # ln 3 > 1: the real margin is met for the second sample
    assert_close(Hinge().d_loss(real, fake), scalar(0.5 * 1.0 + 0.5 * 1.0), **TOL32)


def test_wgan_clipping_clamps_every_parameter() -> None:
    net = nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[-0.5, -0.01, -0.003, 0.0], [0.004, 0.01, 0.02, 3.0]]))
        net.bias.copy_(torch.tensor([0.005, -0.02]))
    WGAN(clip=0.01).after_d_step(net)
    expected_w = torch.tensor([[-0.01, -0.01, -0.003, 0.0], [0.004, 0.01, 0.01, 0.01]])
    assert_close(net.weight.data, expected_w, atol=0.0, rtol=0.0)
    assert_close(net.bias.data, torch.tensor([0.005, -0.01]), atol=0.0, rtol=0.0)
    assert WGAN().clip == 0.01
    assert WGAN().d_penalty(net, torch.zeros(2, 4), torch.zeros(2, 4)) is None


@pytest.mark.parametrize("loss_cls", [Minimax, NonSaturating, MLGame, LSGAN, WGANGP, Hinge])
def test_only_wgan_touches_parameters(loss_cls: type[GANLoss]) -> None:
    net = nn.Linear(3, 1)
    with torch.no_grad():
        net.weight.fill_(5.0)
    loss_cls().after_d_step(net)
    assert_close(net.weight.data, torch.full((1, 3), 5.0), atol=0.0, rtol=0.0)


# --- WGAN-GP gradient penalty --------------------------------------------------------------


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
    loss = WGANGP(gp_weight=10.0)
    assert_close(loss.d_penalty(critic, real, fake), 10.0 * four, **TOL64)
    assert WGANGP().gp_weight == 10.0


def test_gradient_penalty_differentiable_wrt_critic() -> None:
    """d/dw [lambda (||w|| - 1)^2] = lambda * 2 (||w|| - 1) * w / ||w||."""
    w0 = norm3_weights(6)
    critic = LinearCritic(w0)
    real = torch.randn(4, 6, dtype=torch.float64)
    fake = torch.randn(4, 6, dtype=torch.float64)
    lam = 7.5
    penalty = WGANGP(gp_weight=lam).d_penalty(critic, real, fake)
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


# --- stability, registry, argument checks --------------------------------------------------

EXTREME = [
    (torch.tensor([50.0, 50.0]), torch.tensor([-50.0, -50.0])),  # D confident and right
    (torch.tensor([-50.0, -50.0]), torch.tensor([50.0, 50.0])),  # D confident and wrong
    (torch.tensor([50.0, -50.0]), torch.tensor([-50.0, 50.0])),
]


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("real,fake", EXTREME)
def test_costs_and_gradients_finite_at_extreme_logits(
    name: str, real: Tensor, fake: Tensor
) -> None:
    loss = LOSSES[name]()
    r = real.clone().requires_grad_(True)
    f = fake.clone().requires_grad_(True)
    d = loss.d_loss(r, f)
    g = loss.g_loss(f)
    assert torch.isfinite(d) and torch.isfinite(g)  # ml_game: exp(50) = 5e21 is finite in float32
    grads = torch.autograd.grad(d + g, (r, f))
    assert all(torch.isfinite(x).all() for x in grads)


def test_cross_entropy_costs_exact_at_extreme_logits() -> None:
    """softplus(50) = 50 + log1p(e^-50) = 50 to float precision: naive log(sigmoid) gives inf."""
    wrong_real, wrong_fake = torch.full((2,), -50.0), torch.full((2,), 50.0)
    assert_close(Minimax().d_loss(wrong_real, wrong_fake), scalar(50.0), **TOL32)
    assert_close(Minimax().g_loss(wrong_fake), scalar(-25.0), **TOL32)
    assert_close(NonSaturating().g_loss(-wrong_fake), scalar(25.0), **TOL32)
    assert_close(value_function(wrong_real, wrong_fake), scalar(-100.0), **TOL32)
    right = Minimax().d_loss(-wrong_real, -wrong_fake)
    assert_close(right, scalar(math.exp(-50.0)), atol=0.0, rtol=1e-5)


@pytest.mark.parametrize("big", [200.0, 1000.0])
def test_cross_entropy_costs_exact_far_beyond_float32_sigmoid(big: float) -> None:
    """sigmoid(-big) underflows to 0 in float32; the logit forms must not care."""
    real, fake = torch.full((3,), -big), torch.full((3,), big)
    assert_close(Minimax().d_loss(real, fake), scalar(big), **TOL32)
    assert_close(Minimax().g_loss(fake), scalar(-big / 2), **TOL32)
    assert_close(NonSaturating().g_loss(-fake), scalar(big / 2), **TOL32)
    assert_close(value_function(real, fake), scalar(-2 * big), **TOL32)
    f = (-fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(NonSaturating().g_loss(f), f)
    assert_close(grad * 3, torch.full((3,), -0.5), **TOL32)


def test_registry_names_and_defaults() -> None:
    expected = {"minimax", "non_saturating", "ml_game", "lsgan", "wgan", "wgan_gp", "hinge",
                "fgan_kl", "fgan_reverse_kl", "fgan_js", "fgan_pearson", "fgan_hellinger"}
    assert set(LOSSES) == expected
    for name, cls in LOSSES.items():
        assert cls.name == name
        assert issubclass(cls, GANLoss)
        assert isinstance(cls(), GANLoss)
    assert LOSSES["minimax"] is Minimax and LOSSES["wgan_gp"] is WGANGP


def test_invalid_arguments_rejected() -> None:
    with pytest.raises(ValueError, match="clip"):
        WGAN(clip=0.0)
    with pytest.raises(ValueError, match="gp_weight"):
        WGANGP(gp_weight=-1.0)
    with pytest.raises(ValueError, match="empty"):
        Minimax().d_loss(torch.zeros(0), torch.zeros(3))
    with pytest.raises(ValueError, match="empty"):
        Hinge().g_loss(torch.zeros(0))
