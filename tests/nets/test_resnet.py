"""SNGAN's ResNets (``ganlab.nets.resnet``): shapes, spectral norm, blocks by hand, sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from ganlab.app.build import build_module
from ganlab.app.train import train
from ganlab.core.errors import GanlabError
from ganlab.nets.resnet import DBlock, GBlock, ResNetDiscriminator, ResNetGenerator

LATENT = 8
# (shape, G width, D width): 28 = 7·2², 32 = 4·2³ (Table 4), 48 = 6·2³, 64 = 4·2⁴ (sngan64).
CASES = [((1, 28, 28), 16, 16), ((3, 32, 32), 16, 16), ((3, 48, 48), 8, 8),
         ((3, 64, 64), 32, 32)]


def _pair(shape: tuple[int, ...], gw: int, dw: int) -> tuple[nn.Module, nn.Module]:
    return ResNetGenerator(LATENT, shape, base_width=gw), ResNetDiscriminator(shape, base_width=dw)


@pytest.mark.parametrize(("shape", "gw", "dw"), CASES)
def test_shapes_range_features_and_gradients(shape: tuple[int, ...], gw: int, dw: int) -> None:
    torch.manual_seed(0)
    g, d = _pair(shape, gw, dw)
    x = g(torch.randn(4, LATENT))
    assert x.shape == (4, *shape)
    assert x.min() >= -1 and x.max() <= 1
    logits = d(x)
    assert logits.shape == (4,)
    logits.mean().backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    d.eval()
    with torch.no_grad():
        f = d.features(x)
        assert f.shape == (4, d.feature_dim)
        torch.testing.assert_close(d(x), d.head(f), rtol=0, atol=0)


def test_stage_sizes() -> None:
    g28, d28 = _pair((1, 28, 28), 16, 16)
    assert (g28.arch, g28.bottom, len(g28.blocks)) == ("sngan32", 7, 2)
    g32 = ResNetGenerator(LATENT, (3, 32, 32))
    assert (g32.bottom, g32.widths) == (4, [256, 256, 256, 256])
    g64 = ResNetGenerator(LATENT, (3, 64, 64))
    assert (g64.arch, g64.widths) == ("sngan64", [1024, 512, 256, 128, 64])
    d64 = ResNetDiscriminator((3, 64, 64))
    outs = [b.conv2.out_channels for b in d64.blocks]
    assert outs == [64, 128, 256, 512, 1024]
    # Feature maps: 28 -> 14 -> 7 (then two plain blocks); 64 -> 32 -> ... -> 2.
    assert d28.blocks(torch.zeros(1, 1, 28, 28)).shape == (1, 16, 7, 7)
    d64s = ResNetDiscriminator((3, 64, 64), base_width=32)
    assert d64s.blocks(torch.zeros(1, 3, 64, 64)).shape == (1, 32, 2, 2)


def _conv(in_ch: int, out_ch: int, k: int) -> int:
    return in_ch * out_ch * k * k + out_ch


def _gblock(i: int, o: int) -> int:  # BN(i), conv3x3 i->o, BN(o), conv3x3 o->o, conv1x1 i->o
    return 2 * i + _conv(i, o, 3) + 2 * o + _conv(o, o, 3) + _conv(i, o, 1)


def _dblock(i: int, o: int, shortcut: bool) -> int:  # conv3x3 i->i, conv3x3 i->o [, 1x1 i->o]
    return _conv(i, i, 3) + _conv(i, o, 3) + (_conv(i, o, 1) if shortcut else 0)


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_of_the_papers_tables() -> None:
    """Miyato et al. print no parameter counts; these are their Table 4 (32x32, z = 128) and
    the 64x64 variant counted layer by layer (4,276,739 and 1,053,825 at 32x32, as Mimicry's
    SNGANGenerator32 / SNGANDiscriminator32)."""
    g32 = (128 * 4 * 4 * 256 + 4 * 4 * 256) + 3 * _gblock(256, 256) + 2 * 256 + _conv(256, 3, 3)
    d32 = (_conv(3, 128, 3) + _conv(128, 128, 3) + _conv(3, 128, 1)) \
        + _dblock(128, 128, True) + 2 * _dblock(128, 128, False) + (128 + 1)
    assert (g32, d32) == (4_276_739, 1_053_825)
    assert _count(ResNetGenerator(128, (3, 32, 32))) == g32
    assert _count(ResNetDiscriminator((3, 32, 32))) == d32
    widths = [1024, 512, 256, 128, 64]
    blocks = sum(_gblock(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
    g64 = (128 * 16 * 1024 + 16 * 1024) + blocks + 2 * 64 + _conv(64, 3, 3)
    d64 = (_conv(3, 64, 3) + _conv(64, 64, 3) + _conv(3, 64, 1)) \
        + sum(_dblock(a, 2 * a, True) for a in (64, 128, 256, 512)) + (1024 + 1)
    assert _count(ResNetGenerator(128, (3, 64, 64))) == g64
    assert _count(ResNetDiscriminator((3, 64, 64))) == d64


def test_every_discriminator_layer_is_spectrally_normalised() -> None:
    torch.manual_seed(0)
    d = ResNetDiscriminator((3, 32, 32), base_width=16)
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    # optimized block 3 convs, block 2 three, blocks 3-4 two each, the head: 11 layers.
    assert len(layers) == 11
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    g = ResNetGenerator(LATENT, (3, 32, 32), base_width=16)
    assert not any(parametrize.is_parametrized(m) for m in g.modules())
    off = ResNetDiscriminator((3, 32, 32), base_width=16, spectral_norm=False)
    assert not any(parametrize.is_parametrized(m) for m in off.modules())


def _top_singular_values(d: nn.Module) -> list[float]:
    layers = [m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        return [float(torch.linalg.svdvals(m.weight.flatten(1))[0]) for m in layers]


def test_spectral_norm_makes_sigma_one_after_power_iterations() -> None:
    """Each normalised W / σ̂(W), reshaped to (out, in·k·k), has largest singular value 1 once
    the power iteration (one round per training forward) has converged."""
    torch.manual_seed(0)
    d = ResNetDiscriminator((3, 32, 32), base_width=8)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        for _ in range(300):
            d(x)
    d.eval()
    sigmas = _top_singular_values(d)
    assert len(sigmas) == 11
    torch.testing.assert_close(torch.tensor(sigmas), torch.ones(11), rtol=0, atol=1e-3)
    # Without it the same layers are far from 1 (the check can fail).
    torch.manual_seed(0)
    raw = _top_singular_values(ResNetDiscriminator((3, 32, 32), base_width=8,
                                                   spectral_norm=False))
    assert max(abs(s - 1) for s in raw) > 0.2


def _set_center(conv: nn.Conv2d, value: float) -> None:
    """A 1-channel convolution that multiplies by ``value`` (kernel centre only, no bias)."""
    with torch.no_grad():
        conv.weight.zero_()
        k = conv.weight.shape[-1] // 2
        conv.weight[0, 0, k, k] = value
        conv.bias.zero_()


@pytest.mark.parametrize(("x", "expected"), [
    # relu(x) = [[1, 0], [3, 4]]; x2 -> x0.5 -> avg 2; shortcut avg(3x) = 4.5.
    ([[1.0, -2.0], [3.0, 4.0]], 6.5),
    # relu(x) = [[0, 2], [0, 0]]; 2*2*0.5 / 4 = 0.5; shortcut avg(3x) = 3 * (-6) / 4.
    ([[-1.0, 2.0], [-3.0, -4.0]], 0.5 + 3 * (-6.0) / 4),
])
def test_discriminator_block_by_hand(x: list[list[float]], expected: float) -> None:
    block = DBlock(1, 1, downsample=True, sn=False)
    _set_center(block.conv1, 2.0)
    _set_center(block.conv2, 0.5)
    _set_center(block.shortcut, 3.0)
    out = block(torch.tensor(x).view(1, 1, 2, 2)).detach()
    assert out.shape == (1, 1, 1, 1)
    assert float(out) == pytest.approx(expected, abs=1e-6)


def test_optimized_block_by_hand() -> None:
    """First block: conv -> ReLU -> conv -> avgpool, plus avgpool -> 1x1 conv (no leading
    ReLU: a negative input still reaches conv1)."""
    block = DBlock(1, 1, downsample=True, first=True, sn=False)
    _set_center(block.conv1, -1.0)
    _set_center(block.conv2, 2.0)
    _set_center(block.shortcut, 0.5)
    x = torch.tensor([[-1.0, -3.0], [2.0, 0.0]]).view(1, 1, 2, 2)
    # conv1: [[1, 3], [-2, 0]] -> relu [[1, 3], [0, 0]] -> x2 -> avg 2; shortcut 0.5 * avg(x).
    assert float(block(x).detach()) == pytest.approx(2.0 + 0.5 * (-2.0 / 4), abs=1e-6)


@pytest.mark.parametrize(("x", "expected"), [(2.0, 3.0 * 2 * 0.5 + 1.5 * 2), (-2.0, 1.5 * -2)])
def test_generator_block_by_hand(x: float, expected: float) -> None:
    """BN (eval, fresh statistics, eps 0: identity) -> ReLU -> nearest x2 -> conv -> BN -> ReLU
    -> conv, plus nearest x2 -> 1x1 conv: a 1x1 input becomes a constant 2x2 map."""
    block = GBlock(1, 1).eval()
    block.bn1.eps = block.bn2.eps = 0.0
    _set_center(block.conv1, 3.0)
    _set_center(block.conv2, 0.5)
    _set_center(block.shortcut, 1.5)
    with torch.no_grad():
        out = block(torch.full((1, 1, 1, 1), x))
    torch.testing.assert_close(out, torch.full((1, 1, 2, 2), expected), rtol=0, atol=1e-6)


def test_discriminator_identity_shortcut() -> None:
    block = DBlock(1, 1, downsample=False, sn=False)
    assert block.shortcut is None
    _set_center(block.conv1, 1.0)
    _set_center(block.conv2, 1.0)
    x = torch.tensor([[-1.0, 2.0], [3.0, -4.0]]).view(1, 1, 2, 2)
    torch.testing.assert_close(block(x), x + x.clamp(min=0), rtol=0, atol=0)


@pytest.mark.parametrize(("shape", "arch"), [((3, 30, 30), "auto"), ((1, 28, 32), "auto"),
                                             ((3, 14, 14), "auto"), ((1, 28, 28), "sngan64"),
                                             ((3, 32, 32), "biggan")])
def test_unsupported_shape_or_arch_is_one_line(shape: tuple[int, ...], arch: str) -> None:
    with pytest.raises(GanlabError) as info:
        ResNetDiscriminator(shape, arch=arch)
    assert "\n" not in str(info.value) and str(info.value).startswith("resnet")


def test_a_short_hinge_run_on_digits(make_cfg) -> None:
    metrics = train(make_cfg("data=mnist_offline", "generator=resnet", "discriminator=resnet",
                             "loss=hinge", "generator.net.base_width=8",
                             "discriminator.net.base_width=8", "train.iterations=2",
                             "metrics.every_n_iterations=0"))
    assert metrics["iterations"] == 2


def test_sngan_cifar10_preset_is_table_4_with_mimicrys_protocol(make_cfg) -> None:
    cfg = make_cfg("experiment=sngan_cifar10")

    class FakeCifar:
        data_shape = (3, 32, 32)

    module = build_module(cfg, FakeCifar())
    assert _count(module.generator) == 4_276_739
    assert _count(module.discriminator) == 1_053_825
    assert (cfg.train.d_steps, cfg.train.iterations) == (5, 100_000)  # batch: the tests' 32
    assert [t.name for t in module.family.plugins if t.kind == "trick"] == ["lr_decay"]
    assert cfg.tricks.lr_decay.final_factor == 0.0
    assert list(cfg.optim.generator.betas) == list(cfg.optim.discriminator.betas) == [0.0, 0.9]
    assert cfg.metrics.num_real == 50_000  # and num_samples 50,000 (the tests' is 200)
