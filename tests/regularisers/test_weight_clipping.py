"""WGAN's weight clipping (``src/ganlab/regularisers/weight_clipping.py``; Arjovsky et al.
2017, Algorithm 1)."""

from __future__ import annotations

import pytest
import torch
from plugin_helpers import dstep, setup
from torch import nn
from torch.testing import assert_close

from ganlab.core.errors import GanlabError
from ganlab.regularisers.weight_clipping import WeightClipping


def test_wgan_clipping_clamps_every_parameter() -> None:
    net = nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[-0.5, -0.01, -0.003, 0.0], [0.004, 0.01, 0.02, 3.0]]))
        net.bias.copy_(torch.tensor([0.005, -0.02]))
    plugin = WeightClipping(clip=0.01)
    players = setup(plugin, discriminator=net).players
    zero = torch.zeros(())
    plugin.after_d_step(dstep(zero, zero, players_=players))
    expected_w = torch.tensor([[-0.01, -0.01, -0.003, 0.0], [0.004, 0.01, 0.01, 0.01]])
    assert_close(net.weight.data, expected_w, atol=0.0, rtol=0.0)
    assert_close(net.bias.data, torch.tensor([0.005, -0.01]), atol=0.0, rtol=0.0)
    assert WeightClipping().clip == 0.01
    # clipping adds nothing to D's cost
    assert plugin.d_cost(torch.tensor(1.5), dstep(zero, zero, players_=players)) == 1.5
    with pytest.raises(GanlabError, match="^weight_clipping: clip must be > 0, got 0.0$"):
        WeightClipping(clip=0.0)
