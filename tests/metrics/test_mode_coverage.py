"""Mode-coverage metrics on hand-built samples with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from ganlab.metrics.mode_coverage import mode_coverage


def ring(m: int = 8, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(m, dtype=torch.float64) * 2 * math.pi / m
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def test_uniform_on_modes() -> None:
    centers = ring()
    samples = centers.repeat(5, 1)
    r = mode_coverage(samples, centers, std=0.02)
    assert r == {
        "modes_covered": 8,
        "hq_fraction": 1.0,
        "reverse_kl": 0.0,
        "num_modes": 8,
        "num_samples": 40,
    }


def test_uniform_on_grid_kl_exactly_zero() -> None:
    xs = torch.arange(-2.0, 3.0) * 2
    centers = torch.cartesian_prod(xs, xs).float()
    r = mode_coverage(centers.repeat(100, 1), centers, std=0.05)
    assert r["modes_covered"] == 25 and r["reverse_kl"] == 0.0 and r["num_samples"] == 2500


def test_all_on_one_mode() -> None:
    centers = ring()
    samples = centers[3].repeat(50, 1)
    r = mode_coverage(samples, centers, std=0.02)
    assert r["modes_covered"] == 1
    assert r["hq_fraction"] == 1.0
    assert r["reverse_kl"] == pytest.approx(math.log(8), rel=1e-12)


def test_half_far_away() -> None:
    centers = ring()
    far = torch.full((8, 2), 100.0, dtype=torch.float64)
    r = mode_coverage(torch.cat([centers, far]), centers, std=0.02)
    assert r["hq_fraction"] == 0.5
    assert r["modes_covered"] == 8
    assert r["reverse_kl"] == 0.0


@pytest.mark.parametrize(("k", "is_hq"), [(2.9, True), (3.1, False)])
def test_threshold_boundary(k: float, is_hq: bool) -> None:
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    std = 0.1
    direction = torch.tensor([0.6, 0.8])  # unit vector, so the distance is k * std
    samples = (k * std * direction).unsqueeze(0)
    r = mode_coverage(samples, centers, std=std)
    assert r["hq_fraction"] == (1.0 if is_hq else 0.0)
    assert r["modes_covered"] == (1 if is_hq else 0)


def test_custom_threshold() -> None:
    centers = torch.tensor([[0.0, 0.0]])
    samples = torch.tensor([[0.25, 0.0]])
    assert mode_coverage(samples, centers, std=0.1)["hq_fraction"] == 1.0
    assert mode_coverage(samples, centers, std=0.1, threshold=2.0)["hq_fraction"] == 0.0


def test_sixty_forty_split() -> None:
    centers = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    samples = torch.cat([centers[0].repeat(60, 1), centers[1].repeat(40, 1)])
    samples = samples + 0.01 * torch.randn(100, 2, generator=torch.Generator().manual_seed(0))
    r = mode_coverage(samples, centers, std=0.1)
    expected = 0.6 * math.log(1.2) + 0.4 * math.log(0.8)
    assert r["modes_covered"] == 2 and r["hq_fraction"] == 1.0
    assert r["reverse_kl"] == pytest.approx(expected, rel=1e-12)


def test_no_high_quality_samples() -> None:
    centers = ring()
    r = mode_coverage(torch.full((10, 2), 50.0), centers, std=0.02)
    assert r["modes_covered"] == 0 and r["hq_fraction"] == 0.0
    assert r["reverse_kl"] == math.inf


def test_one_dimensional_centers() -> None:
    centers = torch.tensor([-4.0, 0.0, 4.0])
    samples = torch.tensor([-4.0, -3.9, 0.1, 20.0])
    r = mode_coverage(samples, centers, std=0.1)
    assert r["modes_covered"] == 2 and r["hq_fraction"] == 0.75 and r["num_modes"] == 3
    q = torch.tensor([2 / 3, 1 / 3], dtype=torch.float64)
    expected = float((q * torch.log(q * 3)).sum())
    assert r["reverse_kl"] == pytest.approx(expected, rel=1e-12)
    r2 = mode_coverage(samples.unsqueeze(1), centers.unsqueeze(1), std=0.1)
    assert r2 == r


def test_dimension_mismatch() -> None:
    with pytest.raises(ValueError, match="dimension"):
        mode_coverage(torch.zeros(3, 2), torch.zeros(4, 3), std=1.0)
