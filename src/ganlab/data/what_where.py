"""What-where digits: each of the 5,000 offline MNIST digits drawn inside a bounding box of a
64×64 canvas; the condition is the pair (what = its class, where = its box).

The data of GAWWN's bounding-box conditioning (Reed, Akata, Mohan, Tenka, Schiele & Lee 2016,
"Learning What and Where to Draw", §3.1) made from digits. Digit ``i`` is cropped to its ink
(its pixels above 0), then resized (kornia, bilinear, antialiased) with its aspect ratio kept
so that its longer side is ``L ~ U{side_min..side_max}`` pixels, and pasted at a uniformly
drawn position; ``L`` and the position come from a generator seeded by ``(layout_seed, i)``,
so the canvases are the same in every run. The box is the pasted rectangle, so the digit's ink
fills it. Boxes are integer pixel coordinates ``(x0, y0, x1, y1)``, half-open: the box covers
columns ``x0 .. x1 - 1`` and rows ``y0 .. y1 - 1``.

A minibatch is ``(canvases in [-1, 1] (B, 1, 64, 64), conditions (B, 5))`` with the float
condition layout :data:`CONDITION_LAYOUT` = ``(label, x0, y0, x1, y1)`` in pixels. The held-out
share (``held_out``, :class:`ImageDataModule`'s stratified split) keeps its conditions in
``held_out_conditions``.
"""

from __future__ import annotations

import functools

import torch
from kornia.geometry.transform import resize
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.core.seeds import HELD_OUT_SEED
from ganlab.data.images import ImageDataModule, MNISTOffline, to_unit_range
from ganlab.data.split import stratified_split
from ganlab.data.stream import generator_for

#: The columns of a condition row.
CONDITION_LAYOUT = ("label", "x0", "y0", "x1", "y1")
#: Side of the digit image that the lab's digit classifier reads, and of the ink inside it
#: (MNIST's own normalisation: the digit fits a 20×20 box centred in 28×28).
CROP_SIZE = 28
CROP_INK = 20


def ink_box(image: Tensor, threshold: float) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` (half-open) of the pixels of ``image (H, W)`` above ``threshold``;
    ``None`` when there are none."""
    rows = torch.nonzero((image > threshold).any(dim=1)).flatten()
    cols = torch.nonzero((image > threshold).any(dim=0)).flatten()
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def check_sides(canvas: int, side_min: int, side_max: int) -> None:
    """One line unless ``2 <= side_min <= side_max <= canvas``."""
    if not 2 <= side_min <= side_max <= canvas:
        raise GanlabError(
            f"data.side_min={side_min} and data.side_max={side_max} must satisfy "
            f"2 <= side_min <= side_max <= data.canvas={canvas}"
        )


def what_where_canvases(digits: Tensor, canvas: int = 64, side_min: int = 16,
                        side_max: int = 40, layout_seed: int = 0) -> tuple[Tensor, Tensor]:
    """uint8 digits ``(N, 1, h, w)`` -> uint8 canvases ``(N, 1, canvas, canvas)`` and int64
    boxes ``(N, 4)`` = ``(x0, y0, x1, y1)`` (the module docstring says how)."""
    check_sides(canvas, side_min, side_max)
    if digits.dim() != 4 or digits.shape[1] != 1:
        raise GanlabError(f"what-where digits must be (N, 1, H, W); got {tuple(digits.shape)}")
    n = digits.shape[0]
    out = torch.zeros(n, 1, canvas, canvas, dtype=torch.uint8)
    boxes = torch.zeros(n, 4, dtype=torch.int64)
    for i in range(n):
        found = ink_box(digits[i, 0], 0)
        if found is None:
            raise GanlabError(f"what-where: digit {i} has no ink")
        x0, y0, x1, y1 = found
        ink = digits[i : i + 1, :, y0:y1, x0:x1].float()
        g = generator_for(layout_seed, i)
        side = int(torch.randint(side_min, side_max + 1, (1,), generator=g))
        ih, iw = y1 - y0, x1 - x0
        h, w = (side, max(2, round(side * iw / ih))) if ih >= iw else \
            (max(2, round(side * ih / iw)), side)
        bx = int(torch.randint(0, canvas - w + 1, (1,), generator=g))
        by = int(torch.randint(0, canvas - h + 1, (1,), generator=g))
        drawn = resize(ink, (h, w), interpolation="bilinear", antialias=True)
        out[i, :, by : by + h, bx : bx + w] = drawn.round().clamp(0, 255).to(torch.uint8)[0]
        boxes[i] = torch.tensor([bx, by, bx + w, by + h])
    return out, boxes


def conditions(labels: Tensor, boxes: Tensor) -> Tensor:
    """Float conditions ``(N, 5)`` = ``(label, x0, y0, x1, y1)`` (:data:`CONDITION_LAYOUT`)."""
    return torch.cat([labels.float()[:, None], boxes.float()], dim=1)


def check_conditions(cond: Tensor, num_classes: int, canvas: int) -> None:
    """One line unless ``cond`` is ``(B, 5)`` rows of an integer label in ``[0, num_classes)``
    and an integer box with ``0 <= x0 < x1 <= canvas`` and ``0 <= y0 < y1 <= canvas``."""
    if cond.dim() != 2 or cond.shape[1] != len(CONDITION_LAYOUT):
        raise GanlabError(f"a what-where condition is (B, 5) = (label, x0, y0, x1, y1); got "
                          f"shape {tuple(cond.shape)}")
    if not torch.equal(cond, cond.round()):
        raise GanlabError("what-where conditions must hold integer labels and pixel coordinates")
    labels, x0, y0, x1, y1 = cond.unbind(1)
    if bool(((labels < 0) | (labels >= num_classes)).any()):
        raise GanlabError(f"what-where condition: a label outside 0..{num_classes - 1}")
    if bool(((x1 <= x0) | (y1 <= y0)).any()):
        raise GanlabError("what-where condition: an empty box (x1 <= x0 or y1 <= y0)")
    if bool(((x0 < 0) | (y0 < 0) | (x1 > canvas) | (y1 > canvas)).any()):
        raise GanlabError(f"what-where condition: a box outside the {canvas}x{canvas} canvas")


def digit_crops(canvases: Tensor, boxes: Tensor, size: int = CROP_SIZE, ink: int = CROP_INK
                ) -> Tensor:
    """The box of each canvas as a digit image: canvases in [-1, 1] ``(N, 1, H, W)`` and
    integer boxes ``(N, 4)`` -> ``(N, 1, size, size)`` in [-1, 1], the box resized (kornia,
    bilinear, antialiased) so that its longer side is ``ink`` pixels, aspect kept, centred on
    a background of -1 (MNIST's normalisation, what the lab's digit classifier reads)."""
    out = torch.full((canvases.shape[0], 1, size, size), -1.0, device=canvases.device)
    for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
        h, w = y1 - y0, x1 - x0
        scale = ink / max(h, w)
        rh, rw = max(1, round(h * scale)), max(1, round(w * scale))
        part = resize(canvases[i : i + 1, :, y0:y1, x0:x1], (rh, rw), interpolation="bilinear",
                      antialias=True)
        top, left = (size - rh) // 2, (size - rw) // 2
        out[i, :, top : top + rh, left : left + rw] = part[0]
    return out


@functools.lru_cache(maxsize=2)
def _offline_canvases(canvas: int, side_min: int, side_max: int, layout_seed: int
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """Canvases, boxes and labels of the 5,000 offline digits (kept for the process: every
    run of the same settings in it gets the same canvases without resizing them again)."""
    digits, labels = MNISTOffline(batch_size=1, d_steps=1, iterations=1, seed=0).load()
    canvases, boxes = what_where_canvases(digits, canvas, side_min, side_max, layout_seed)
    return canvases, boxes, labels


class WhatWhereDigits(ImageDataModule):
    """``data=what_where_digits``: the 5,000 offline digits on ``canvas × canvas`` canvases,
    each inside its box (module docstring); 10 classes, conditions ``(label, x0, y0, x1, y1)``.

    Args:
        canvas: side of the canvas in pixels.
        side_min, side_max: the range of the longer side of a box.
        layout_seed: seeds every digit's box (with the digit's index): fixed data.
        held_out: share of each class held out of training (``held_out_conditions``).
        batch_size, d_steps, iterations, seed: see :class:`ImageDataModule`.
    """

    num_classes = 10
    boxes: Tensor
    held_out_boxes: Tensor | None = None

    def __init__(self, canvas: int = 64, side_min: int = 16, side_max: int = 40,
                 layout_seed: int = 0, held_out: float = 0.0, *, batch_size: int, d_steps: int,
                 iterations: int, seed: int) -> None:
        check_sides(canvas, side_min, side_max)
        super().__init__(resolution=None, held_out=held_out, batch_size=batch_size,
                         d_steps=d_steps, iterations=iterations, seed=seed)
        self.canvas, self.side_min, self.side_max = int(canvas), int(side_min), int(side_max)
        self.layout_seed = int(layout_seed)

    def digits(self) -> tuple[Tensor, Tensor]:
        """The source digits (uint8 ``(N, 1, 28, 28)``) and their labels: MNISTOffline's."""
        return MNISTOffline(batch_size=1, d_steps=1, iterations=1, seed=0).load()

    def load(self) -> tuple[Tensor, Tensor]:
        args = (self.canvas, self.side_min, self.side_max, self.layout_seed)
        if type(self).digits is WhatWhereDigits.digits:  # the offline digits: made once
            canvases, boxes, labels = (t.clone() for t in _offline_canvases(*args))
        else:
            digits, labels = self.digits()
            canvases, boxes = what_where_canvases(digits, *args)
        self._all_boxes, self._all_labels = boxes, labels.to(torch.int64)
        return canvases, labels

    def prepare(self) -> None:
        super().prepare()
        boxes = self._all_boxes
        if self.held_out > 0:  # the same split as ImageDataModule.prepare made of the images
            kept, held = stratified_split(self._all_labels, self.held_out, HELD_OUT_SEED)
            self.held_out_boxes = boxes[held]
            boxes = boxes[kept]
        self.boxes = boxes

    @property
    def held_out_conditions(self) -> Tensor | None:
        """Conditions ``(M, 5)`` of the held-out canvases (``None`` without ``held_out``)."""
        if self.held_out_boxes is None:
            return None
        return conditions(self.held_out_labels, self.held_out_boxes)

    @property
    def train_conditions(self) -> Tensor:
        """Conditions ``(N, 5)`` of the training canvases."""
        self._ensure_loaded()
        return conditions(self.labels, self.boxes)

    def sample(self, index: int) -> tuple[Tensor, Tensor]:
        """Global minibatch ``index``: canvases in [-1, 1] and their conditions ``(B, 5)``."""
        self._ensure_loaded()
        count = self.world_size * self.batch_size
        idx = self.rows(index * count, count)
        return to_unit_range(self.images[idx]), conditions(self.labels[idx], self.boxes[idx])


__all__ = ["CONDITION_LAYOUT", "WhatWhereDigits", "check_conditions", "conditions",
           "digit_crops", "ink_box", "what_where_canvases"]
