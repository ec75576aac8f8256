"""The priors of the adversarial autoencoder: closed-form moments, samples, determinism."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate

from ganlab.core.errors import GanlabError
from ganlab.data.priors import LabelMixture, Mixture, Normal, Prior, SwissRoll, circle_centres

N = 200_000


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _check_sample_moments(prior: Prior, seed: int = 0) -> None:
    """Sample mean and covariance of ``N`` draws within 5 standard errors of the closed form
    (SE of a mean: sqrt(var / N); of a covariance entry: sqrt((s_ii s_jj + s_ij²) / N) for a
    Gaussian, which bounds the others here up to the factor 5)."""
    z = prior.sample(N, _gen(seed)).double()
    assert z.shape == (N, prior.dim)
    mean, cov = prior.mean(), prior.covariance()
    var = cov.diagonal()
    assert torch.all((z.mean(0) - mean).abs() <= 5 * (var / N).sqrt())
    se = ((torch.outer(var, var) + cov**2) / N).sqrt()
    assert torch.all((torch.cov(z.T) - cov).abs() <= 5 * se)


def test_normal_moments() -> None:
    prior = Normal(dim=3, std=2.0)
    assert torch.equal(prior.mean(), torch.zeros(3, dtype=torch.float64))
    assert torch.equal(prior.covariance(), 4.0 * torch.eye(3, dtype=torch.float64))
    _check_sample_moments(prior)


def test_circle_centres_by_hand() -> None:
    c = circle_centres(4, 2.0)
    expected = torch.tensor([[2.0, 0.0], [0.0, 2.0], [-2.0, 0.0], [0.0, -2.0]], dtype=torch.float64)
    torch.testing.assert_close(c, expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize(("k", "mean", "cov"), [
    # K >= 3 evenly spaced centres: E z = 0, Cov z = (std² + r²/2) I.
    (10, [0.0, 0.0], [[0.25 + 8.0, 0.0], [0.0, 0.25 + 8.0]]),
    # K = 2: centres (±4, 0): Cov = std² I + diag(r², 0).
    (2, [0.0, 0.0], [[0.25 + 16.0, 0.0], [0.0, 0.25]]),
    # K = 1: one Gaussian at (4, 0).
    (1, [4.0, 0.0], [[0.25, 0.0], [0.0, 0.25]]),
])
def test_mixture_moments_by_hand(k: int, mean: list[float], cov: list[list[float]]) -> None:
    prior = Mixture(components=k, radius=4.0, std=0.5)
    torch.testing.assert_close(prior.mean(), torch.tensor(mean, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(prior.covariance(), torch.tensor(cov, dtype=torch.float64),
                               atol=1e-12, rtol=0)
    _check_sample_moments(prior)


def test_swiss_roll_moments_against_quadrature() -> None:
    prior = SwissRoll(scale=0.25, noise=0.1)
    a, b = prior.t_min, prior.t_max

    def expect(f: object) -> float:
        return integrate.quad(f, a, b, limit=200)[0] / (b - a)  # type: ignore[arg-type]

    ex = expect(lambda t: t * math.cos(t))
    ey = expect(lambda t: t * math.sin(t))
    exx = expect(lambda t: (t * math.cos(t)) ** 2)
    eyy = expect(lambda t: (t * math.sin(t)) ** 2)
    exy = expect(lambda t: t * t * math.cos(t) * math.sin(t))
    s2 = 0.25**2
    mean = torch.tensor([0.25 * ex, 0.25 * ey], dtype=torch.float64)
    cov = torch.tensor([[s2 * (exx - ex * ex) + 0.01, s2 * (exy - ex * ey)],
                        [s2 * (exy - ex * ey), s2 * (eyy - ey * ey) + 0.01]], dtype=torch.float64)
    torch.testing.assert_close(prior.mean(), mean, atol=1e-10, rtol=0)
    torch.testing.assert_close(prior.covariance(), cov, atol=1e-10, rtol=0)
    _check_sample_moments(prior)


def test_swiss_roll_points_lie_on_the_roll_without_noise() -> None:
    z = SwissRoll(scale=0.5).sample(1000, _gen(1)).double() / 0.5
    t = z.norm(dim=1)  # |(t cos t, t sin t)| = t
    assert t.min() >= 1.5 * math.pi - 1e-4 and t.max() <= 4.5 * math.pi + 1e-4
    torch.testing.assert_close(z, torch.stack([t * t.cos(), t * t.sin()], 1), atol=1e-4, rtol=0)


@pytest.mark.parametrize("prior", [Normal(2), Mixture(), SwissRoll(noise=0.1), LabelMixture()],
                         ids=lambda p: p.name)
def test_samples_are_fixed_by_the_generator(prior: Prior) -> None:
    first = prior.sample(64, _gen(7))
    assert first.shape == (64, 2) and first.dtype == torch.float32
    assert torch.equal(first, prior.sample(64, _gen(7)))
    assert not torch.equal(first, prior.sample(64, _gen(8)))


def test_label_mixture_draws_each_label_from_its_component() -> None:
    prior = LabelMixture(num_classes=10, radius=4.0, std=0.5)
    labels = torch.arange(10).repeat_interleave(20_000)
    z = prior.sample(len(labels), _gen(3), labels=labels).double()
    offset = z - prior.centres[labels]
    # z - c_y ~ N(0, std² I) for every y: mean within 5 SE, variance within 5 SE (2σ⁴/n).
    n = 20_000
    for y in range(10):
        part = offset[labels == y]
        assert torch.all(part.mean(0).abs() <= 5 * math.sqrt(0.25 / n))
        assert torch.all((part.var(0) - 0.25).abs() <= 5 * math.sqrt(2 * 0.25**2 / n))
    # The nearest centre is the label's for all but the far tails (centres 2.47 apart).
    nearest = torch.cdist(z, prior.centres).argmin(1)
    assert (nearest == labels).double().mean() > 0.97


def test_label_mixture_labelled_draws_and_marginal() -> None:
    prior = LabelMixture()
    z, labels = prior.sample_labelled(10_000, _gen(4))
    # By hand: the labels from the generator, then one N(0, I) pair per row.
    g = _gen(4)
    assert torch.equal(labels, torch.randint(10, (10_000,), generator=g))
    expected = prior.centres.float()[labels] + 0.5 * torch.randn(10_000, 2, generator=g)
    assert torch.equal(z, expected)
    counts = torch.bincount(labels, minlength=10).double()
    # Uniform labels: each count within 5 SE of 1000.
    assert torch.all((counts - 1000).abs() <= 5 * math.sqrt(10_000 * 0.1 * 0.9))
    torch.testing.assert_close(prior.covariance(), Mixture().covariance())
    _check_sample_moments(prior)
    with pytest.raises(NotImplementedError):
        Normal(2).sample_labelled(3, _gen(0))


@pytest.mark.parametrize("make", [lambda: Normal(0), lambda: Normal(2, std=0.0),
                                  lambda: Mixture(radius=-1.0), lambda: Mixture(std=0.0),
                                  lambda: SwissRoll(scale=0.0), lambda: LabelMixture(0)])
def test_bad_parameters_are_one_line_errors(make: object) -> None:
    with pytest.raises(GanlabError) as err:
        make()  # type: ignore[operator]
    assert "\n" not in str(err.value)
