"""The pix2pix U-Net: shapes, skip connections, dropout as its only noise, the paper's
256×256 size, bad input (ganlab.nets.unet)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganlab.core.errors import GanlabError
from ganlab.nets.unet import UNetGenerator


def test_digit_unet_goes_28_14_7_and_back() -> None:
    net = UNetGenerator(1, 1, 28, depth=2, base_width=8)
    sizes = []
    h = torch.randn(3, 1, 28, 28)
    for layer in net.down:
        h = layer(h)
        sizes.append(tuple(h.shape[1:]))
    assert sizes == [(8, 14, 14), (16, 7, 7)]
    out = net(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 1, 28, 28) and out.abs().max() <= 1
    # The innermost decoder layer reads the bottleneck alone; the outer one its output next to
    # the first encoder output (the skip).
    assert net.up[1][1].in_channels == 16 and net.up[0][1].in_channels == 16


def test_the_skip_carries_the_input_to_the_output() -> None:
    # With the bottleneck's decoder layer zeroed, the output depends on x only through the skip.
    net = UNetGenerator(1, 1, 8, depth=2, base_width=4, dropout=0).eval()
    nn.init.zeros_(net.up[1][1].weight)
    x = torch.randn(2, 1, 8, 8)
    expected = net.up[0](torch.cat([net.up[1](net.down[1](net.down[0](x))), net.down[0](x)], 1))
    assert torch.equal(net(x), expected)
    assert not torch.equal(net(x), net(torch.randn(2, 1, 8, 8)))


def test_dropout_is_the_noise_in_training_only() -> None:
    net = UNetGenerator(1, 1, 16, depth=3, base_width=4, dropout_layers=3)
    dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 2  # every decoder layer but the output layer, at depth 3
    x = torch.randn(4, 1, 16, 16)
    torch.manual_seed(0)
    a = net(x)
    torch.manual_seed(0)
    assert torch.equal(a, net(x))
    assert not torch.equal(a, net(x))
    net.eval()
    assert torch.equal(net(x), net(x))
    assert not any(isinstance(m, nn.Dropout) for m in
                   UNetGenerator(1, 1, 16, depth=3, dropout=0).modules())


def test_the_papers_unet_256_has_the_official_parameter_count() -> None:
    net = UNetGenerator(3, 3, 256, depth=8, base_width=64, max_width=512)
    assert net.widths == [64, 128, 256, 512, 512, 512, 512, 512]
    assert sum(p.numel() for p in net.parameters()) == 54_413_955
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image_size": 28, "depth": 3}, "multiple of 8; got 28"),
    ({"dropout": 1.0}, "dropout must be in"),
])
def test_bad_settings_are_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(GanlabError, match=message):
        UNetGenerator(**kwargs)


def test_wrong_input_shape_is_one_line() -> None:
    with pytest.raises(GanlabError, match=r"takes images \(B, 1, 28, 28\); got \(2, 3, 28, 28\)"):
        UNetGenerator(1, 1, 28, base_width=4)(torch.randn(2, 3, 28, 28))
