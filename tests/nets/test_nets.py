"""Shapes, structure and gradients of the MLP and DCGAN networks."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from ganlab.core.errors import GanlabError
from ganlab.nets import (
    DCGANDiscriminator,
    DCGANGenerator,
    MLPDiscriminator,
    MLPGenerator,
    dcgan_geometry,
)

LATENT = 8
IMAGE_SHAPES = [(1, 28, 28), (1, 32, 32), (3, 32, 32), (3, 64, 64)]
TOY_SHAPES = [(2,), (1,)]


def _pair(kind: str, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    if kind == "mlp":
        output = "tanh" if len(shape) == 3 else "linear"
        return (
            MLPGenerator(LATENT, shape, hidden_dim=32, output=output),
            MLPDiscriminator(shape, hidden_dim=32),
        )
    return DCGANGenerator(LATENT, shape, base_width=8), DCGANDiscriminator(shape, base_width=8)


CASES = [("mlp", s) for s in TOY_SHAPES + IMAGE_SHAPES] + [("dcgan", s) for s in IMAGE_SHAPES]


@pytest.mark.parametrize(("kind", "shape"), CASES)
def test_shapes_range_and_features(kind: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    g, d = _pair(kind, shape)
    z = torch.randn(4, LATENT)
    x = g(z)
    assert x.shape == (4, *shape)
    if len(shape) == 3:  # tanh output
        assert x.min() >= -1 and x.max() <= 1
    logits = d(x)
    assert logits.shape == (4,)
    d.eval()
    with torch.no_grad():
        f = d.features(x)
        assert f.shape == (4, d.feature_dim)
        torch.testing.assert_close(d(x), d.head(f))


@pytest.mark.parametrize(("kind", "shape"), CASES)
def test_gradients_reach_every_parameter(kind: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    g, d = _pair(kind, shape)
    d(g(torch.randn(4, LATENT))).mean().backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_mlp_layers_and_options() -> None:
    g = MLPGenerator(LATENT, (2,), hidden_dim=16, num_layers=2)
    linears = [m for m in g.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 16), (16, 16), (16, 2)]
    assert not any(isinstance(m, nn.Tanh) for m in g.modules())  # linear output by default
    d = MLPDiscriminator((2,), hidden_dim=16, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in d.modules()) == 3
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    assert isinstance(d.head_linear, nn.Linear) and d.feature_dim == 16
    relu_d = MLPDiscriminator((2,), activation="relu")
    assert not any(isinstance(m, nn.LeakyReLU) for m in relu_d.modules())
    with pytest.raises(GanlabError, match="unknown activation"):
        MLPDiscriminator((2,), activation="swish")
    with pytest.raises(GanlabError, match="output"):
        MLPGenerator(LATENT, (2,), output="sigmoid")


def test_dcgan_generator_parameter_count_matches_pytorch_examples() -> None:
    g = DCGANGenerator(100, (3, 64, 64), base_width=64)
    assert sum(p.numel() for p in g.parameters()) == 3_576_704


def test_dcgan_stage_widths_64() -> None:
    d = DCGANDiscriminator((3, 64, 64))
    assert [m.out_channels for m in d.body if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512]
    assert d.feature_dim == 512 * 4 * 4
    g = DCGANGenerator(100, (3, 64, 64))
    convs = [m for m in g.net if isinstance(m, nn.ConvTranspose2d)]
    assert [m.out_channels for m in convs] == [512, 256, 128, 64, 3]
    assert convs[0].kernel_size == (4, 4)


def test_dcgan_28_uses_7x7_start() -> None:
    g = DCGANGenerator(LATENT, (1, 28, 28), base_width=8)
    assert g.net[0].kernel_size == (7, 7)
    d = DCGANDiscriminator((1, 28, 28), base_width=8)
    assert d.head_conv.kernel_size == (7, 7) and d.feature_shape == (16, 7, 7)
    assert dcgan_geometry((1, 28, 28)) == (1, 7, 2)
    assert dcgan_geometry((3, 8, 8)) == (3, 4, 1)


@pytest.mark.parametrize("shape", IMAGE_SHAPES)
def test_dcgan_batch_norm_placement(shape: tuple[int, ...]) -> None:
    g = DCGANGenerator(LATENT, shape, base_width=8)
    layers = list(g.net)
    conv_idx = [i for i, m in enumerate(layers) if isinstance(m, nn.ConvTranspose2d)]
    # every transposed conv but the last is followed by BN then ReLU; the last by tanh only
    for i in conv_idx[:-1]:
        assert isinstance(layers[i + 1], nn.BatchNorm2d) and isinstance(layers[i + 2], nn.ReLU)
        assert layers[i].bias is None
    assert isinstance(layers[-1], nn.Tanh) and layers[-2] is layers[conv_idx[-1]]
    assert not any(isinstance(m, (nn.Linear, nn.MaxPool2d, nn.AvgPool2d)) for m in g.modules())

    d = DCGANDiscriminator(shape, base_width=8)
    layers = list(d.body)
    conv_idx = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
    assert conv_idx[0] == 0 and isinstance(layers[1], nn.LeakyReLU)  # no BN on the input layer
    for i in conv_idx[1:]:
        assert isinstance(layers[i + 1], nn.BatchNorm2d) and isinstance(layers[i + 2], nn.LeakyReLU)
        assert layers[i].stride == (2, 2)
    slopes = [m.negative_slope for m in d.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes and all(s == 0.2 for s in slopes)
    assert not any(isinstance(m, (nn.Linear, nn.MaxPool2d, nn.AvgPool2d)) for m in d.modules())


def count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("batch_norm", [True, False])
def test_dcgan_extra_layers(batch_norm: bool) -> None:
    shape = (1, 28, 28)
    # one extra block at width 8: conv3x3 8->8 (+ BN's scale and shift, or the conv's bias)
    block = 8 * 8 * 9 + (2 * 8 if batch_norm else 8)
    g0 = DCGANGenerator(LATENT, shape, base_width=8, batch_norm=batch_norm)
    g2 = DCGANGenerator(LATENT, shape, base_width=8, batch_norm=batch_norm, extra_layers=2)
    d0 = DCGANDiscriminator(shape, base_width=8, batch_norm=batch_norm)
    d2 = DCGANDiscriminator(shape, base_width=8, batch_norm=batch_norm, extra_layers=2)
    assert count(g2) - count(g0) == 2 * block and count(d2) - count(d0) == 2 * block
    unit = [nn.Conv2d, *([nn.BatchNorm2d] if batch_norm else []), nn.ReLU]
    # G: the extra blocks sit right before the output layer, at 14x14 with 8 channels
    assert [type(m) for m in g2.net][-2 - 2 * len(unit):-2] == 2 * unit
    d_unit = [nn.Conv2d, *([nn.BatchNorm2d] if batch_norm else []), nn.LeakyReLU]
    # D: right after the input layer (which has no BN)
    assert [type(m) for m in d2.body][2:2 + 2 * len(d_unit)] == 2 * d_unit
    for m in [*g2.net, *d2.body]:
        if isinstance(m, nn.Conv2d):
            assert m.kernel_size == (3, 3) or m.stride == (2, 2)
    z = torch.randn(3, LATENT)
    assert g2(z).shape == (3, *shape) and d2(g2(z)).shape == (3,)
    assert d2.feature_dim == d0.feature_dim


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_dcgan_extra_layers_must_be_a_count(bad: object) -> None:
    message = f"dcgan needs extra_layers an integer >= 0; got {bad!r}"
    with pytest.raises(GanlabError, match=re.escape(message)):
        DCGANGenerator(LATENT, (1, 28, 28), extra_layers=bad)  # type: ignore[arg-type]
    with pytest.raises(GanlabError, match=re.escape(message)):
        DCGANDiscriminator((1, 28, 28), extra_layers=bad)  # type: ignore[arg-type]


def test_dcgan_without_batch_norm() -> None:
    g = DCGANGenerator(LATENT, (1, 32, 32), base_width=8, batch_norm=False)
    d = DCGANDiscriminator((1, 32, 32), base_width=8, batch_norm=False)
    for net in (g, d):
        assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert g(torch.randn(2, LATENT)).shape == (2, 1, 32, 32)
    assert d(torch.randn(2, 1, 32, 32)).shape == (2,)


def test_dcgan_weight_init() -> None:
    torch.manual_seed(0)
    g = DCGANGenerator(100, (3, 64, 64))
    convs = torch.cat(
        [m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    )
    assert abs(convs.mean().item()) < 1e-3 and abs(convs.std().item() - 0.02) < 1e-3
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    scales = torch.cat([m.weight.detach() for m in bns])
    assert abs(scales.mean().item() - 1.0) < 5e-3 and abs(scales.std().item() - 0.02) < 5e-3
    assert all((m.bias == 0).all() for m in bns)
    d = DCGANDiscriminator((3, 64, 64))
    assert (d.body[0].bias == 0).all() and (d.head_conv.bias == 0).all()


@pytest.mark.parametrize(
    "shape", [(3, 30, 30), (1, 28, 32), (28, 28), (3, 4, 4), (3, 7, 7), (3, 48, 48), (3, 0, 0)]
)
@pytest.mark.parametrize("cls", ["generator", "discriminator"])
def test_dcgan_unsupported_shape(shape: tuple[int, ...], cls: str) -> None:
    with pytest.raises(GanlabError) as info:
        if cls == "generator":
            DCGANGenerator(LATENT, shape)
        else:
            DCGANDiscriminator(shape)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg == (
        "dcgan needs square images of side 4·2^n or 7·2^n (n ≥ 1), e.g. 28, 32, 64; "
        f"got data_shape {shape}"
    )


def test_mlp_encoder_shapes_and_layers() -> None:
    from ganlab.nets.mlp import MLPEncoder

    torch.manual_seed(0)
    enc = MLPEncoder((1, 28, 28), 2, hidden_dim=16, num_layers=2)
    assert enc(torch.randn(5, 1, 28, 28)).shape == (5, 2)
    linears = [m for m in enc.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 16), (16, 16), (16, 2)]
    assert sum(isinstance(m, nn.ReLU) for m in enc.modules()) == 2
    with pytest.raises(GanlabError):
        MLPEncoder((2,), 0)
