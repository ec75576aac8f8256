"""The image metrics' formulas against closed forms and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from torchmetrics.image.fid import _compute_fid
from torchmetrics.image.kid import poly_mmd

from ganlab.metrics.frechet import FrechetDistance, frechet_distance, mean_and_covariance
from ganlab.metrics.inception_score import InceptionScore
from ganlab.metrics.kid import KernelDistance, mmd2_unbiased
from ganlab.metrics.precision_recall import knn_radii, precision_recall

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def gaussian(n: int, mu: torch.Tensor, sigma: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, mu.shape[0], generator=g, dtype=torch.float64)
    return mu + z @ torch.linalg.cholesky(sigma).T


def closed_form_frechet(mu1, s1, mu2, s2) -> float:
    root = scipy.linalg.sqrtm(s1.numpy() @ s2.numpy()).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1.numpy() + s2.numpy() - 2 * root))


# -- FID -------------------------------------------------------------------------------------
def test_frechet_distance_of_commuting_covariances_by_hand() -> None:
    # S1 = diag(a), S2 = diag(b): Tr(S1 + S2 - 2 (S1 S2)^1/2) = sum (sqrt a - sqrt b)^2
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0])
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0
    assert abs(frechet_distance(mu1, torch.diag(a), mu2, torch.diag(b)) - expected) <= 1e-12


def test_frechet_distance_equals_torchmetrics_formula() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(20, 20, generator=g, dtype=torch.float64) for _ in range(2))
    s1, s2 = a @ a.T + 0.1 * torch.eye(20), b @ b.T / 3
    mu1, mu2 = torch.randn(20, generator=g, dtype=torch.float64), torch.zeros(20)
    ours = frechet_distance(mu1, s1, mu2.double(), s2)
    theirs = float(_compute_fid(mu1, s1, mu2.double(), s2))
    assert abs(ours - theirs) <= 1e-9 * abs(theirs)
    assert abs(ours - closed_form_frechet(mu1, s1, mu2, s2)) <= 1e-9 * abs(theirs)


def test_fid_of_gaussian_samples_matches_the_true_moments() -> None:
    n = 100_000
    mu1, mu2 = torch.tensor([0.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 0.5]).double()
    s1 = torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    s2 = torch.tensor([[2.0, 0.0], [0.0, 0.5]], dtype=torch.float64)
    exact = closed_form_frechet(mu1, s1, mu2, s2)
    fid = FrechetDistance(2)
    fid.update(gaussian(n, mu1, s1, seed=1), real=True)
    fid.update(gaussian(n, mu2, s2, seed=2), real=False)
    estimate = float(fid.compute())
    # Standard error of the estimate: the mean term varies by 4 d^T (S1 + S2) d / n, each
    # covariance trace by 2 tr(S^2) / n; the bias (tr S1 + tr S2) / n is far smaller.
    # Tolerance: 5 of these standard errors (0.085; over 20 seeds the error measured 0.004 ±
    # 0.013, at most 0.035).
    d = mu1 - mu2
    var = (4 * d @ (s1 + s2) @ d + 2 * (s1 @ s1).trace() + 2 * (s2 @ s2).trace()) / n
    tol = 5 * math.sqrt(float(var))
    assert abs(estimate - exact) <= tol
    assert exact > 10 * tol  # the test can tell FID from 0


def test_fid_of_a_set_with_itself_is_zero() -> None:
    x = torch.randn(500, 16, generator=torch.Generator().manual_seed(3))
    fid = FrechetDistance(16)
    fid.update(x.double(), real=True)
    fid.update(x.double(), real=False)
    assert abs(float(fid.compute())) <= 1e-9


def test_cached_real_statistics_give_the_same_fid() -> None:
    g = torch.Generator().manual_seed(4)
    real, fake = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 0.3
    direct = FrechetDistance(8)
    direct.update(real.double(), real=True)
    direct.update(fake.double(), real=False)
    cached = FrechetDistance(8)
    cached.set_real_statistics(*mean_and_covariance(real), 300)
    cached.update(fake.double(), real=False)
    assert abs(float(direct.compute()) - float(cached.compute())) <= 1e-9
    cached.reset()  # the real statistics survive a reset, the generated ones do not
    assert int(cached.real_features_num_samples) == 300
    assert int(cached.fake_features_num_samples) == 0


# -- Inception Score ---------------------------------------------------------------------------
def confident_logits(labels: torch.Tensor, k: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, k).double() * 60.0


@pytest.mark.parametrize("k", [2, 10])
def test_inception_score_of_a_confident_uniform_classifier_is_the_number_of_classes(k) -> None:
    score = InceptionScore(k, splits=1)
    score.update(confident_logits(torch.arange(100 * k) % k, k))
    mean, std = score.compute()
    assert abs(float(mean) - k) <= 1e-9
    assert float(std) == 0.0


def test_inception_score_of_a_collapsed_generator_is_one() -> None:
    score = InceptionScore(10, splits=10)
    score.update(confident_logits(torch.full((1000,), 3), 10))
    mean, std = score.compute()
    assert abs(float(mean) - 1.0) <= 1e-9
    assert abs(float(std)) <= 1e-9


def test_inception_score_by_hand() -> None:
    # p(y|x) = (3/4, 1/4) for half the samples, (1/4, 3/4) for the other half: p(y) = (1/2, 1/2),
    # IS = exp(H(p(y)) - E H(p(y|x))) = exp(log 2 + 3/4 log 3/4 + 1/4 log 1/4).
    rows = torch.tensor([[math.log(3), 0.0], [0.0, math.log(3)]], dtype=torch.float64)
    score = InceptionScore(2, splits=1)
    score.update(rows.repeat(50, 1))
    expected = math.exp(math.log(2) + 0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert abs(float(score.compute()[0]) - expected) <= 1e-12


# -- KID -------------------------------------------------------------------------------------
def test_mmd2_by_hand() -> None:
    # k(a, b) = (ab + 1)^3 in 1-D; x = (0, 1), y = (2, 3):
    # off-diagonal k_xx sum 2 * 1, k_yy sum 2 * 343, k_xy sum 1 + 1 + 27 + 64 = 93
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[2.0], [3.0]])
    assert abs(mmd2_unbiased(x, y) - ((2 + 686) / 2 - 2 * 93 / 4)) <= 1e-12


def test_mmd2_equals_torchmetrics_poly_mmd() -> None:
    g = torch.Generator().manual_seed(9)
    x, y = torch.randn(300, 16, generator=g), torch.randn(300, 16, generator=g) + 0.2
    theirs = float(poly_mmd(x.double(), y.double()))
    assert abs(mmd2_unbiased(x, y) - theirs) <= 1e-6 * abs(theirs)  # float32 products


def test_kid_with_one_subset_of_everything_is_the_unbiased_mmd2() -> None:
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(200, 6, generator=g), torch.randn(200, 6, generator=g) * 1.5 + 0.5
    kid = KernelDistance(6, subsets=1, subset_size=200)
    kid.update(x, real=True)
    kid.update(y, real=False)
    expected = mmd2_unbiased(x, y)
    assert abs(float(kid.compute()[0]) - expected) <= 1e-9 * abs(expected)
    assert expected > 0.1


def kid_of(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    kid = KernelDistance(x.shape[1], subsets=20, subset_size=200)
    kid.update(x, real=True)
    kid.update(y, real=False)
    mean, std = kid.compute()
    return float(mean), float(std)


def test_kid_of_two_samples_of_one_distribution_is_about_zero() -> None:
    """Unbiased: over independent pairs of samples of one distribution, the KID estimates
    average to 0 within 3 standard errors of their mean (subsets of one pair overlap, so their
    spread, ``kid_std``, is not the standard error)."""
    g = torch.Generator().manual_seed(6)
    pairs = [(torch.randn(400, 8, generator=g), torch.randn(400, 8, generator=g))
             for _ in range(20)]
    estimates = torch.tensor([kid_of(x, y) for x, y in pairs], dtype=torch.float64)
    means, spreads = estimates[:, 0], estimates[:, 1]
    standard_error = float(means.std()) / math.sqrt(len(means))
    assert abs(float(means.mean())) <= 3 * standard_error
    assert float(spreads.min()) > 0
    x, y = pairs[0]
    assert kid_of(x, y + 0.5)[0] >= 100 * standard_error  # a real difference is far outside


def test_kid_leaves_the_global_random_state_alone() -> None:
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    kid = KernelDistance(2, subsets=5, subset_size=10)
    kid.update(torch.randn(20, 2, generator=torch.Generator()), real=True)
    kid.update(torch.randn(20, 2, generator=torch.Generator()), real=False)
    kid.compute()
    assert torch.equal(torch.rand(3), expected)


# -- precision / recall ---------------------------------------------------------------------
def line(*xs: float) -> torch.Tensor:
    return torch.tensor(xs, dtype=torch.float64).unsqueeze(1)


def test_precision_recall_k1_by_hand() -> None:
    # real {0, 1, 10, 11}: every radius 1; fake {0.5, 5, 10.9, 20}: radii 4.5, 4.5, 5.9, 9.1.
    # 0.5 and 10.9 lie in real balls, 5 and 20 do not; every real point lies in a fake ball.
    p, r = precision_recall(line(0, 1, 10, 11), line(0.5, 5, 10.9, 20), k=1)
    assert (p, r) == (0.5, 1.0)


def test_precision_recall_k3_on_constructed_sets() -> None:
    real = line(*range(10))  # radii: 3 at the ends, 2 inside
    near = line(0.5, 1.5, 2.5, 3.5, 4.5)  # radii 3, 2, 2, 2, 3: they reach 0 .. 7.5
    far = near + 1000
    p, r = precision_recall(real, torch.cat([near, far]), k=3)
    assert (p, r) == (0.5, 0.8)
    assert precision_recall(torch.cat([near, far]), real, k=3) == (0.8, 0.5)
    assert precision_recall(real, real, k=3) == (1.0, 1.0)
    assert precision_recall(real, far, k=3) == (0.0, 0.0)


def test_knn_radii_do_not_depend_on_the_chunk_size() -> None:
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(8))
    assert torch.allclose(knn_radii(x, 3, chunk=7), knn_radii(x, 3, chunk=1024), atol=1e-12)
    expected = torch.cdist(x.double(), x.double()).sort(dim=1).values[:, 3]
    assert torch.allclose(knn_radii(x, 3), expected, atol=1e-12)


def test_a_given_square_root_of_the_first_covariance_gives_the_same_fid() -> None:
    from ganlab.metrics.frechet import sqrt_psd

    g = torch.Generator().manual_seed(10)
    a = torch.randn(6, 6, generator=g, dtype=torch.float64)
    s1, s2 = a @ a.T, torch.eye(6, dtype=torch.float64) * 2
    root = sqrt_psd(s1)
    assert torch.allclose(root @ root, s1, atol=1e-10)
    mu = torch.zeros(6, dtype=torch.float64)
    assert abs(frechet_distance(mu, s1, mu + 1, s2, root) - frechet_distance(mu, s1, mu + 1, s2)) \
        <= 1e-12 * frechet_distance(mu, s1, mu + 1, s2)
