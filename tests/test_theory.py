"""The theory of GAN_SPEC section 2, each statement checked numerically against ganlab.losses.

- For fixed G the cross-entropy D cost is minimised by D*(x) = p_data / (p_data + p_g).
- V(D*, G) = 2 JS(p_data || p_g) - log 4; at p_g = p_data, D* = 1/2 and V = -log 4.
- Maximum-likelihood game: with D = D* held fixed, the gradient of J_G is 1/2 the gradient
  of the negative log-likelihood.
(Gradient saturation of the minimax cost is tested in test_losses.py.)

Expectations under 1-D Gaussians are taken on stratified ("quantile") samples
x_i = mu + sigma * Phi^-1((i - 1/2) / N): a mean over them is the midpoint rule for
E f(x) = int_0^1 f(F^-1(u)) du, so the checks carry quadrature error, not sampling noise.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

from ganlab.losses import MLGame, NonSaturating, value_function

F64 = torch.float64


def quantile_samples(mu: float, sigma: float, n: int) -> Tensor:
    u = (torch.arange(n, dtype=F64) + 0.5) / n
    return mu + sigma * torch.special.ndtri(u)


def gauss_log_pdf(x: Tensor, mu: float | Tensor, sigma: float) -> Tensor:
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def optimal_logit(x: Tensor, data: tuple[float, float], gen: tuple[float, float]) -> Tensor:
    """sigma^-1(D*(x)) = log p_data(x) - log p_g(x)."""
    return gauss_log_pdf(x, *data) - gauss_log_pdf(x, *gen)


# --- D*(x) = p_data / (p_data + p_g) -----------------------------------------------------

GAUSS_PAIRS = [
    # (p_data, p_g, grid): D* = sigmoid(1/2 - x), a linear logit
    ((0.0, 1.0), (1.0, 1.0), (-1.5, 2.5)),
    # D* = sigmoid(log 2 - 3 x^2 / 8), a quadratic logit
    ((0.0, 1.0), (0.0, 2.0), (-2.5, 2.5)),
    ((0.5, 0.7), (-0.5, 1.3), (-1.5, 2.0)),
]


@pytest.mark.parametrize("data,gen,grid_range", GAUSS_PAIRS)
def test_trained_discriminator_matches_d_star(
    data: tuple[float, float], gen: tuple[float, float], grid_range: tuple[float, float]
) -> None:
    """Minimise NonSaturating's J_D over D(x) = sigmoid(a + b x + c x^2) and compare with D*.

    The log-ratio of two Gaussians is quadratic, so this family contains D* for every pair
    and J_D is convex in (a, b, c): the test checks the cost, not an optimiser's luck.
    Tolerance: max |D - D*| < 1e-3 on the grid (observed <= 3e-4 with N = 4000).
    """
    n = 4000
    x_real = quantile_samples(*data, n)
    x_fake = quantile_samples(*gen, n)
    theta = torch.zeros(3, dtype=F64, requires_grad=True)

    def logit(x: Tensor) -> Tensor:
        return theta[0] + theta[1] * x + theta[2] * x**2

    loss = NonSaturating()
    opt = torch.optim.LBFGS(
        [theta],
        lr=1.0,
        max_iter=200,
        tolerance_grad=1e-12,
        tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        cost = loss.d_loss(logit(x_real), logit(x_fake))
        cost.backward()
        return cost

    opt.step(closure)
    grid = torch.linspace(*grid_range, 201, dtype=F64)
    with torch.no_grad():
        d_learned = torch.sigmoid(logit(grid))
    p_data = gauss_log_pdf(grid, *data).exp()
    p_g = gauss_log_pdf(grid, *gen).exp()
    d_star = p_data / (p_data + p_g)
    assert_close(d_learned, d_star, atol=1e-3, rtol=0.0)


# --- V(D*, G) = 2 JS - log 4, discrete distributions (exact) --------------------------------


def kl(p: list[float], q: list[float]) -> float:
    """KL(p || q) = sum p log(p / q), with 0 log 0 = 0."""
    return sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True) if pi > 0)


def js(p: list[float], q: list[float]) -> float:
    m = [(pi + qi) / 2 for pi, qi in zip(p, q, strict=True)]
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def replicate(values: Tensor, counts: list[int]) -> Tensor:
    """One entry per sample: value k repeated counts[k] times (a mean is then exact)."""
    return torch.repeat_interleave(values, torch.tensor(counts))


def discrete_value(logits: Tensor, data_counts: list[int], gen_counts: list[int]) -> Tensor:
    """V(D, G) with D's logit given per support point, via ``value_function``."""
    return value_function(replicate(logits, data_counts), replicate(logits, gen_counts))


def d_star_logits(data_counts: list[int], gen_counts: list[int]) -> Tensor:
    """log(p_data / p_g) per point; +-inf where one of them is 0 (D* = 1 or 0 there)."""
    p = torch.tensor(data_counts, dtype=F64) / sum(data_counts)
    q = torch.tensor(gen_counts, dtype=F64) / sum(gen_counts)
    return torch.log(p) - torch.log(q)


DISCRETE_PAIRS = [
    ([2, 4, 6, 8], [7, 5, 5, 3]),  # p_data, p_g on 4 points, in twentieths
    ([1, 1, 1, 1], [5, 1, 1, 1]),
    ([3, 0, 2, 5], [1, 4, 4, 1]),  # p_data has a hole: D* = 0 there
]


@pytest.mark.parametrize("data_counts,gen_counts", DISCRETE_PAIRS)
def test_value_at_d_star_is_2js_minus_log4_discrete(
    data_counts: list[int], gen_counts: list[int]
) -> None:
    v = discrete_value(d_star_logits(data_counts, gen_counts), data_counts, gen_counts)
    p = [c / sum(data_counts) for c in data_counts]
    q = [c / sum(gen_counts) for c in gen_counts]
    expected = 2 * js(p, q) - math.log(4)
    assert_close(v, torch.tensor(expected, dtype=F64), atol=1e-10, rtol=0.0)


@pytest.mark.parametrize("data_counts,gen_counts", DISCRETE_PAIRS[:2])
def test_d_star_maximises_value_discrete(data_counts: list[int], gen_counts: list[int]) -> None:
    """dV/dl_k = 0 at D* for every support point k, and any perturbation lowers V."""
    logits = d_star_logits(data_counts, gen_counts).requires_grad_(True)
    v = discrete_value(logits, data_counts, gen_counts)
    (grad,) = torch.autograd.grad(v, logits)
    assert_close(grad, torch.zeros_like(grad), atol=1e-12, rtol=0.0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        bump = 0.1 * torch.randn(4, generator=gen, dtype=F64)
        assert discrete_value(logits.detach() + bump, data_counts, gen_counts) < v


def test_disjoint_supports_give_max_js() -> None:
    """JS = log 2 for disjoint supports, so V(D*, G) = 0 (D* = 1 on data, 0 on fakes)."""
    data_counts, gen_counts = [1, 1, 0, 0], [0, 0, 1, 3]
    v = discrete_value(d_star_logits(data_counts, gen_counts), data_counts, gen_counts)
    assert js([0.5, 0.5, 0, 0], [0, 0, 0.25, 0.75]) == pytest.approx(math.log(2), rel=1e-12)
    assert_close(v, torch.tensor(0.0, dtype=F64), atol=1e-12, rtol=0.0)


def test_global_optimum_discrete() -> None:
    """p_g = p_data: D* = 1/2 (logit 0) everywhere and V = -log 4."""
    counts = [2, 4, 6, 8]
    logits = d_star_logits(counts, counts)
    assert_close(torch.sigmoid(logits), torch.full((4,), 0.5, dtype=F64), atol=0.0, rtol=0.0)
    v = discrete_value(logits, counts, counts)
    assert_close(v, torch.tensor(-math.log(4), dtype=F64), atol=1e-12, rtol=0.0)


# --- V(D*, G) = 2 JS - log 4, Gaussians (quadrature) ---------------------------------------


def js_gaussians_trapezoid(data: tuple[float, float], gen: tuple[float, float]) -> float:
    """JS from its KL definition, trapezoid rule on [-30, 30] with step 1e-4."""
    x = torch.linspace(-30.0, 30.0, 600_001, dtype=F64)
    p = gauss_log_pdf(x, *data).exp()
    q = gauss_log_pdf(x, *gen).exp()
    m = 0.5 * (p + q)

    def kl_density(a: Tensor) -> float:
        integrand = torch.where(a > 0, a * torch.log(a / m), torch.zeros_like(a))
        return torch.trapezoid(integrand, x).item()

    return 0.5 * kl_density(p) + 0.5 * kl_density(q)


@pytest.mark.parametrize(
    "data,gen", [((0.0, 1.0), (1.0, 1.0)), ((0.0, 1.0), (0.0, 2.0)), ((0.0, 1.0), (3.0, 0.5))]
)
def test_value_at_d_star_is_2js_minus_log4_gaussians(
    data: tuple[float, float], gen: tuple[float, float]
) -> None:
    """Tolerance 1e-4 (observed quadrature error <= 5e-6 with N = 1e5)."""
    n = 100_000
    x_real = quantile_samples(*data, n)
    x_fake = quantile_samples(*gen, n)
    v = value_function(optimal_logit(x_real, data, gen), optimal_logit(x_fake, data, gen))
    expected = 2 * js_gaussians_trapezoid(data, gen) - math.log(4)
    assert_close(v, torch.tensor(expected, dtype=F64), atol=1e-4, rtol=0.0)


def test_js_quadrature_sanity() -> None:
    """The independent JS reference is 0 for equal Gaussians and near log 2 when far apart."""
    assert js_gaussians_trapezoid((0.0, 1.0), (0.0, 1.0)) == pytest.approx(0.0, abs=1e-12)
    assert js_gaussians_trapezoid((0.0, 1.0), (20.0, 1.0)) == pytest.approx(math.log(2), abs=1e-6)


def test_global_optimum_gaussians() -> None:
    x = quantile_samples(0.3, 1.7, 10_000)
    logits = optimal_logit(x, (0.3, 1.7), (0.3, 1.7))
    assert_close(torch.sigmoid(logits), torch.full_like(x, 0.5), atol=0.0, rtol=0.0)
    assert_close(value_function(logits, logits), torch.tensor(-math.log(4), dtype=F64))


# --- maximum-likelihood game ---------------------------------------------------------------


@pytest.mark.parametrize("mu0", [0.5, -1.2])
def test_ml_game_gradient_is_half_nll_gradient(mu0: float) -> None:
    """p_data = N(0, 1), G(z) = mu + z. With D = D* for mu0 held fixed,
    dJ_G/dmu = 1/2 d/dmu E_data[-log p_g] = 1/2 mu0 (both sides by quadrature; tolerance
    1e-4, observed <= 1.2e-5: exp(l*) = exp(-mu0 z - mu0^2/2) weighs the tails, hence N = 1e6)."""
    data, z = (0.0, 1.0), quantile_samples(0.0, 1.0, 1_000_000)
    x_data = quantile_samples(*data, 100_000)

    mu = torch.tensor(mu0, dtype=F64, requires_grad=True)
    fake_logits = optimal_logit(mu + z, data, (mu0, 1.0))  # D* frozen at mu0
    (g_grad,) = torch.autograd.grad(MLGame().g_loss(fake_logits), mu)

    nll = -gauss_log_pdf(x_data, mu, 1.0).mean()
    (nll_grad,) = torch.autograd.grad(nll, mu)

    assert_close(nll_grad, torch.tensor(mu0, dtype=F64), atol=1e-4, rtol=0.0)
    assert_close(g_grad, 0.5 * nll_grad, atol=1e-4, rtol=0.0)
