"""SRGAN's networks (``ganlab.nets.srresnet``): shapes, pixel shuffle ×2 per stage, the residual
block and the skip by hand, parameter counts, one-line errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.core.errors import GanlabError
from ganlab.nets.srresnet import ResidualBlock, SRGANDiscriminator, SRResNet


@pytest.mark.parametrize(("scale", "side"), [(2, 7), (4, 7), (8, 4)])
def test_generator_upscales_by_pixel_shuffle(scale: int, side: int) -> None:
    torch.manual_seed(0)
    g = SRResNet(channels=1, scale=scale, width=8, num_blocks=2)
    shuffles = [m for m in g.modules() if isinstance(m, nn.PixelShuffle)]
    assert len(shuffles) == {2: 1, 4: 2, 8: 3}[scale]
    assert all(m.upscale_factor == 2 for m in shuffles)
    x = torch.randn(3, 1, side, side)
    out = g(x)
    assert out.shape == (3, 1, scale * side, scale * side)
    assert out.min() >= -1 and out.max() <= 1
    # Each stage: a conv to 4·width channels, then the shuffle doubles the side.
    h = g.head(x)
    for stage in g.upsample:
        assert stage[0].out_channels == 4 * g.width
        h2 = stage(h)
        assert h2.shape == (3, g.width, 2 * h.shape[2], 2 * h.shape[3])
        h = h2
    out.mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in g.parameters())


def test_generator_forward_by_hand() -> None:
    torch.manual_seed(1)
    g = SRResNet(channels=1, scale=2, width=4, num_blocks=1, output="linear").eval()
    x = torch.randn(2, 1, 5, 5)
    head = g.head(x)
    block = g.blocks[0].body
    r = F.batch_norm(F.conv2d(head, block[0].weight, block[0].bias, padding=1),
                     block[1].running_mean, block[1].running_var, block[1].weight, block[1].bias)
    r = F.prelu(r, block[2].weight)
    r = F.batch_norm(F.conv2d(r, block[3].weight, block[3].bias, padding=1),
                     block[4].running_mean, block[4].running_var, block[4].weight, block[4].bias)
    trunk = head + r  # the residual block
    end = g.trunk_end
    t = F.batch_norm(F.conv2d(trunk, end[0].weight, end[0].bias, padding=1),
                     end[1].running_mean, end[1].running_var, end[1].weight, end[1].bias)
    h = head + t  # the long skip
    up = g.upsample[0]
    h = F.prelu(F.pixel_shuffle(F.conv2d(h, up[0].weight, up[0].bias, padding=1), 2),
                up[2].weight)
    expected = F.conv2d(h, g.tail.weight, g.tail.bias, padding=4)
    with torch.no_grad():
        torch.testing.assert_close(g(x), expected, rtol=0, atol=1e-6)
        assert torch.equal(g.blocks[0](head), head + block(head))
    assert isinstance(g.blocks[0], ResidualBlock)


def test_tanh_output_is_the_linear_output_squashed() -> None:
    torch.manual_seed(2)
    linear = SRResNet(width=4, num_blocks=1, output="linear")
    tanh = SRResNet(width=4, num_blocks=1, output="tanh")
    tanh.load_state_dict(linear.state_dict())
    x = torch.randn(2, 1, 7, 7)
    assert torch.equal(tanh(x), linear(x).tanh())


def test_discriminator_shapes() -> None:
    torch.manual_seed(0)
    d = SRGANDiscriminator(channels=1, image_size=28, width=8, num_stages=2, hidden=16)
    assert d.body(torch.zeros(2, 1, 28, 28)).shape == (2, 16, 7, 7)
    logits = d(torch.randn(5, 1, 28, 28))
    assert logits.shape == (5,)
    logits.sum().backward()
    assert all(p.grad is not None for p in d.parameters())
    d3 = SRGANDiscriminator(channels=3, image_size=32, width=4, num_stages=3)
    assert d3.body(torch.zeros(1, 3, 32, 32)).shape == (1, 16, 4, 4)


def generator_parameters(w: int, blocks: int, stages: int, c: int = 1) -> int:
    head = 81 * c * w + w + w                   # 9x9 conv, PReLU
    block = 2 * (9 * w * w + w) + 2 * 2 * w + w  # two 3x3 convs, two BN, PReLU
    trunk_end = 9 * w * w + w + 2 * w
    stage = 9 * w * 4 * w + 4 * w + w            # conv to 4w, PReLU (the shuffle has none)
    tail = 81 * w * c + c
    return head + blocks * block + trunk_end + stages * stage + tail


def discriminator_parameters(w: int, hidden: int, side: int, c: int = 1) -> int:
    first = 9 * c * w + w
    stage1 = 9 * w * w + w + 2 * w
    stage2 = (9 * w * 2 * w + 2 * w + 4 * w) + (9 * 4 * w * w + 2 * w + 4 * w)
    return first + stage1 + stage2 + 2 * w * side * side * hidden + hidden + hidden + 1


@pytest.mark.parametrize(("w", "blocks", "scale"), [(32, 4, 4), (8, 2, 2), (64, 16, 4)])
def test_generator_parameter_count(w: int, blocks: int, scale: int) -> None:
    g = SRResNet(width=w, num_blocks=blocks, scale=scale)
    stages = {2: 1, 4: 2}[scale]
    assert sum(p.numel() for p in g.parameters()) == generator_parameters(w, blocks, stages)


def test_default_sizes() -> None:
    assert sum(p.numel() for p in SRResNet().parameters()) == 163_233
    assert sum(p.numel() for p in SRGANDiscriminator().parameters()) == 217_489
    assert discriminator_parameters(16, 128, 7) == 217_489
    d = SRGANDiscriminator(width=8, hidden=32)
    assert sum(p.numel() for p in d.parameters()) == discriminator_parameters(8, 32, 7)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: SRResNet(scale=3), "scale must be a power of 2"),
    (lambda: SRResNet(output="relu"), "output must be tanh or linear"),
    (lambda: SRResNet(width=0), "needs width >= 1"),
    (lambda: SRGANDiscriminator(image_size=30, num_stages=2), "must be divisible by 2\\*\\*"),
])
def test_bad_settings_are_one_line(make, message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        make()
    assert "\n" not in str(err.value)


def test_bad_inputs_are_one_line() -> None:
    with pytest.raises(GanlabError, match=r"takes images \(N, 1, h, w\); got \(2, 3, 7, 7\)"):
        SRResNet()(torch.zeros(2, 3, 7, 7))
    with pytest.raises(GanlabError, match=r"takes images \(N, 1, 28, 28\); got \(2, 1, 14, 14\)"):
        SRGANDiscriminator()(torch.zeros(2, 1, 14, 14))
