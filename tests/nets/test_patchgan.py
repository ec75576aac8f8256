"""The PatchGAN: its receptive field by formula and by gradients, its map of patch logits on the
concatenated pair, the paper's 70×70 size, bad input (ganlab.nets.patchgan)."""

from __future__ import annotations

import pytest
import torch

from ganlab.core.errors import GanlabError
from ganlab.nets.patchgan import PatchGANDiscriminator, receptive_field


def test_receptive_field_formula_by_hand() -> None:
    # 70x70: three 4x4 stride-2 layers, two 4x4 stride-1 layers: 1 + 3(1 + 2 + 4 + 8 + 8).
    assert receptive_field([(4, 2)] * 3 + [(4, 1)] * 2) == 70
    assert receptive_field([(4, 2), (4, 1), (4, 1)]) == 16 and receptive_field([(3, 1)]) == 3
    assert [PatchGANDiscriminator(n_layers=n, base_width=4).receptive_field
            for n in (0, 1, 2, 3)] == [7, 16, 34, 70]


@pytest.mark.parametrize("n_layers", [0, 1])
def test_one_logit_sees_exactly_its_receptive_field(n_layers: int) -> None:
    torch.manual_seed(0)
    d = PatchGANDiscriminator(1, 1, n_layers=n_layers, base_width=4).eval()
    x = torch.randn(1, 1, 40, 40, requires_grad=True)
    y = torch.randn(1, 1, 40, 40, requires_grad=True)
    logits = d(x, y)
    i = logits.shape[-1] // 2
    logits[0, 0, i, i].backward()
    for grad in (x.grad, y.grad):
        rows = grad[0, 0].abs().sum(1).nonzero().flatten()
        cols = grad[0, 0].abs().sum(0).nonzero().flatten()
        assert int(rows[-1] - rows[0]) + 1 == d.receptive_field
        assert int(cols[-1] - cols[0]) + 1 == d.receptive_field


def test_logits_map_of_the_concatenated_pair() -> None:
    d = PatchGANDiscriminator(1, 2, n_layers=1, base_width=4).eval()
    x, y = torch.randn(3, 1, 28, 28), torch.randn(3, 2, 28, 28)
    assert d(x, y).shape == (3, 1, 12, 12)
    assert torch.equal(d(x, y), d.net(torch.cat([x, y], 1)))
    assert d.net[0].in_channels == 3


def test_the_papers_70x70_patchgan() -> None:
    d = PatchGANDiscriminator(3, 3, n_layers=3, base_width=64)
    assert sum(p.numel() for p in d.parameters()) == 2_768_705  # the official n_layers=3 D
    assert d(torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_bad_input_is_one_line() -> None:
    d = PatchGANDiscriminator(1, 1, n_layers=1, base_width=4)
    with pytest.raises(GanlabError, match=r"judges pairs \(B, 1, H, W\) and \(B, 1, H, W\)"):
        d(torch.randn(2, 1, 28, 28), torch.randn(2, 1, 14, 14))
    with pytest.raises(GanlabError, match="n_layers >= 0"):
        PatchGANDiscriminator(n_layers=-1)
