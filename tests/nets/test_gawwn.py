"""GAWWN's networks: the spatial replication of the class embedding inside the box (by hand),
the class-only switch, shapes."""

from __future__ import annotations

import pytest
import torch

from ganlab.nets.gawwn import (
    GAWWNDiscriminator,
    GAWWNGenerator,
    box_map,
    box_mask,
    crop_box,
    place_in_box,
)


def test_box_mask_by_hand() -> None:
    # 16 cells over 64 pixels: cell j covers pixels 4j .. 4j + 3.
    boxes = torch.tensor([[8.0, 4.0, 20.0, 13.0], [0.0, 0.0, 64.0, 64.0], [61.0, 1.0, 62.0, 3.0]])
    mask = box_mask(boxes, 16, 64)
    expected = torch.zeros(3, 16, 16)
    expected[0, 1:4, 2:5] = 1  # rows 4..12 -> cells 1..3; columns 8..19 -> cells 2..4
    expected[1] = 1
    expected[2, 0:1, 15:16] = 1  # a box inside one cell turns that cell on
    assert torch.equal(mask, expected)


def test_the_map_is_the_embedding_inside_the_box_and_zero_outside() -> None:
    e = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.25, -1.0]])
    boxes = torch.tensor([[8.0, 4.0, 20.0, 13.0], [32.0, 32.0, 64.0, 64.0]])
    m = box_map(e, boxes, 16, 64)
    assert m.shape == (2, 3, 16, 16)
    for b, (rows, cols) in enumerate(((slice(1, 4), slice(2, 5)), (slice(8, 16), slice(8, 16)))):
        inside = torch.zeros(16, 16, dtype=torch.bool)
        inside[rows, cols] = True
        for c in range(3):
            assert torch.equal(m[b, c][inside], torch.full((int(inside.sum()),), e[b, c].item()))
            assert torch.equal(m[b, c][~inside], torch.zeros(int((~inside).sum())))


def test_place_in_box_draws_the_template_into_its_box_by_hand() -> None:
    template = torch.arange(8.0).view(2, 1, 2, 2)
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [32.0, 16.0, 64.0, 48.0]])
    placed = place_in_box(template, boxes, 4, 64)
    # 4 cells of 16 px, centres 8, 24, 40, 56: a 32-px box's two cells read the template's
    # two pixel centres (u = -1/2, +1/2) exactly; every other cell is 0.
    expected = torch.zeros(2, 1, 4, 4)
    expected[0, 0, 0:2, 0:2] = template[0, 0]
    expected[1, 0, 1:3, 2:4] = template[1, 0]
    assert torch.equal(placed, expected)
    # The whole canvas at the template's size is the identity.
    t = torch.randn(1, 3, 4, 4)
    torch.testing.assert_close(place_in_box(t, torch.tensor([[0.0, 0, 64, 64]]), 4, 64), t,
                               atol=1e-6, rtol=0)


def test_crop_box_reads_the_box_into_its_frame_by_hand() -> None:
    features = torch.arange(32.0).view(2, 1, 4, 4)
    boxes = torch.tensor([[32.0, 0.0, 64.0, 32.0], [0.0, 0.0, 64.0, 64.0]])
    crops = crop_box(features, boxes, 2, 64)
    # Box-frame centres u = 1/4, 3/4 of a 32-px box at x0 = 32: pixels 40, 56 = cells 2, 3.
    assert torch.equal(crops[0, 0], features[0, 0, 0:2, 2:4])
    # The whole canvas at half the size: the mean of each 2x2 block (bilinear between centres).
    assert torch.equal(crops[1, 0], torch.nn.functional.avg_pool2d(features[1:], 2)[0, 0])


def test_the_players_read_the_embedding_through_the_box() -> None:
    torch.manual_seed(0)
    g = GAWWNGenerator(8, width=4, embed_dim=3)
    cond = torch.tensor([[2.0, 8, 4, 20, 13], [7.0, 0, 0, 30, 30]])
    e, where = g.what_where(cond)
    assert torch.equal(e, g.embed.weight[[2, 7]])
    assert torch.equal(where, box_map(e, cond[:, 1:], 16, 64))
    off = GAWWNGenerator(8, width=4, embed_dim=3, where=False)
    off.load_state_dict(g.state_dict())
    _, everywhere = off.what_where(cond)
    assert torch.equal(everywhere, e[:, :, None, None].expand(-1, -1, 16, 16))
    x = g(torch.randn(2, 8), cond)
    assert x.shape == (2, 1, 64, 64) and x.abs().max() <= 1
    d = GAWWNDiscriminator(width=4, embed_dim=3)
    assert d(x, cond).shape == (2,)
    # The box is read: moving it changes D's judgement (where=True) and not where=False's.
    moved = cond.clone()
    moved[:, 1:] = torch.tensor([40.0, 40, 60, 60])
    d.eval()
    assert not torch.equal(d(x, cond), d(x, moved))
    d_off = GAWWNDiscriminator(width=4, embed_dim=3, where=False).eval()
    assert torch.equal(d_off(x, cond), d_off(x, moved))


def test_the_canvas_must_divide_by_16() -> None:
    with pytest.raises(ValueError, match="divisible by 16, got 40"):
        GAWWNGenerator(8, canvas=40)
