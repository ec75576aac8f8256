"""CycleGAN's networks (``ganlab.nets.cyclegan``): shapes, range, layers, the residual block by
hand, patch sizes, no state besides the weights, and one-line errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganlab.core.errors import GanlabError
from ganlab.nets.cyclegan import PatchDiscriminator, ResidualBlock, ResnetTranslator


@pytest.mark.parametrize(("shape", "down", "patches"), [((1, 28, 28), 1, 5), ((3, 32, 32), 2, 6),
                                                         ((1, 28, 28), 2, 5)])
def test_shapes_range_and_gradients(shape: tuple[int, ...], down: int, patches: int) -> None:
    torch.manual_seed(0)
    g = ResnetTranslator(shape, width=8, num_downsampling=down, num_blocks=2)
    d = PatchDiscriminator(shape, width=8, num_layers=2)
    x = torch.rand(4, *shape) * 2 - 1
    out = g(x)
    assert out.shape == x.shape and out.min() >= -1 and out.max() <= 1
    scores = d(out)
    assert scores.shape == (4, 1, patches, patches)
    scores.mean().backward()
    for name, p in [*g.named_parameters(), *d.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_layers_follow_the_paper() -> None:
    g = ResnetTranslator((1, 28, 28), width=16, num_downsampling=1, num_blocks=3)
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    # c7s1-16, d32, 3 blocks of two 3x3 convs, u16, c7s1-1.
    assert [(m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0]) for m in convs] == [
        (1, 16, 7, 1), (16, 32, 3, 2), *[(32, 32, 3, 1)] * 6, (32, 16, 3, 2), (16, 1, 7, 1)]
    assert isinstance(g.net[-1], nn.Tanh) and isinstance(g.net[0], nn.ReflectionPad2d)
    d = PatchDiscriminator((1, 28, 28), width=16, num_layers=3)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.stride[0]) for m in convs] == [
        (1, 16, 2), (16, 32, 2), (32, 64, 2), (64, 128, 1), (128, 1, 1)]
    assert not isinstance(d.net[1], nn.InstanceNorm2d) and isinstance(d.net[3], nn.InstanceNorm2d)
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.002 and all(not m.bias.any() for m in convs)


def test_residual_block_by_hand() -> None:
    torch.manual_seed(1)
    block = ResidualBlock(4)
    x = torch.randn(2, 4, 6, 6)
    conv1, conv2 = block.body[1], block.body[5]

    def norm(t: torch.Tensor) -> torch.Tensor:
        mean = t.mean(dim=(2, 3), keepdim=True)
        var = t.var(dim=(2, 3), keepdim=True, unbiased=False)
        return (t - mean) / torch.sqrt(var + 1e-5)

    pad = nn.functional.pad
    h = torch.relu(norm(conv1(pad(x, (1, 1, 1, 1), mode="reflect"))))
    expected = x + norm(conv2(pad(h, (1, 1, 1, 1), mode="reflect")))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-5)


def test_no_running_statistics_so_eval_equals_train() -> None:
    g = ResnetTranslator((1, 28, 28), width=8)
    assert list(g.buffers()) == []
    x = torch.rand(3, 1, 28, 28)
    a = g(x)
    g.eval()
    assert torch.equal(a, g(x))


@pytest.mark.parametrize(("make", "message"), [
    (lambda: ResnetTranslator((28, 28)), r"needs images \(C, H, W\); got data_shape \(28, 28\)"),
    (lambda: ResnetTranslator((1, 28, 28), num_downsampling=3),
     "3 downsamplings need sides divisible by 8; got 28x28"),
    (lambda: ResnetTranslator((1, 28, 28), width=0), "needs width >= 1"),
    (lambda: PatchDiscriminator((1, 8, 8), num_layers=3),
     "a 3-layer PatchGAN needs larger images than 8x8"),
    (lambda: PatchDiscriminator((1, 28, 28), num_layers=0), "needs width >= 1 and num_layers"),
    (lambda: ResnetTranslator((1, 28, 28))(torch.zeros(2, 3, 28, 28)),
     r"the translator takes images \(1, 28, 28\); got \(3, 28, 28\)"),
    (lambda: PatchDiscriminator((1, 28, 28))(torch.zeros(2, 1, 32, 32)),
     r"the PatchGAN takes images \(1, 28, 28\); got \(1, 32, 32\)"),
])
def test_bad_input_is_one_line(make, message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        make()
    assert "\n" not in str(err.value)
