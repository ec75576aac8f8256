"""GAWWN's networks with the bounding-box pathway (Reed, Akata, Mohan, Tenka, Schiele & Lee
2016, "Learning What and Where to Draw", §3.1, Fig. 3), small convolutional nets for a CPU.

Both players read a condition ``(B, 5) = (label, x0, y0, x1, y1)`` (integer pixels, half-open
box on a ``canvas × canvas`` image). "What": a learned class embedding ``e_y`` (``embed_dim``).
"Where": :func:`box_map`, ``e_y`` replicated spatially at ``canvas / 4`` resolution inside the
box and zero outside, concatenated to the feature maps of that resolution (the paper's local
pathway; it crops with a spatial transformer where we mask, as its Fig. 3 keys do). The
generator's global pathway also feeds ``e_y`` with ``z`` to its first layer.

``where=False`` switches the box off: the map covers the whole canvas whatever the box (the
class-only baseline: the same networks and parameters, the box ignored).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def box_mask(boxes: Tensor, size: int, canvas: int) -> Tensor:
    """``(B, size, size)`` float mask of the cells of a ``size × size`` grid over the canvas
    that overlap each box: cell ``(i, j)`` covers pixels ``[j c, (j + 1) c) × [i c, (i + 1) c)``
    with ``c = canvas / size``, so columns ``floor(x0 / c) .. ceil(x1 / c) - 1`` are on."""
    cells = torch.arange(size, device=boxes.device, dtype=boxes.dtype)
    lo = torch.floor(boxes[:, :2] * size / canvas)  # (B, 2): x, y
    hi = torch.ceil(boxes[:, 2:] * size / canvas)
    on = (cells >= lo[:, :, None]) & (cells < hi[:, :, None])  # (B, 2, size)
    return (on[:, 1, :, None] & on[:, 0, None, :]).to(boxes.dtype)


def box_map(embedding: Tensor, boxes: Tensor, size: int, canvas: int) -> Tensor:
    """The "where" feature map ``(B, E, size, size)``: ``embedding (B, E)`` in every cell that
    overlaps the box (:func:`box_mask`), 0 elsewhere."""
    return embedding[:, :, None, None] * box_mask(boxes.to(embedding), size, canvas)[:, None]


class _BoxConditioned(nn.Module):
    """The shared "what" and "where" of both players."""

    def __init__(self, num_classes: int, canvas: int, embed_dim: int, where: bool) -> None:
        super().__init__()
        if canvas % 16 or canvas < 16:
            raise ValueError(f"the GAWWN nets need a canvas side divisible by 16, got {canvas}")
        self.num_classes, self.canvas, self.embed_dim = int(num_classes), int(canvas), embed_dim
        self.where = bool(where)
        self.map_size = canvas // 4
        self.embed = nn.Embedding(num_classes, embed_dim)

    def what_where(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """``e_y (B, E)`` and the map ``(B, E, canvas/4, canvas/4)`` of conditions ``cond``."""
        e = self.embed(cond[:, 0].long())
        boxes = cond[:, 1:5]
        if not self.where:
            boxes = torch.tensor([0.0, 0.0, self.canvas, self.canvas], device=cond.device
                                 ).expand_as(boxes)
        return e, box_map(e, boxes, self.map_size, self.canvas)


class GAWWNGenerator(_BoxConditioned):
    """``G(z, cond)``: ``[z, e_y]`` -> linear -> ``4w × c/8 × c/8`` -> up to ``c/4``; the box
    map joins there (3×3 conv) -> up to ``c/2`` -> up to ``c``, tanh (BatchNorm + ReLU between).

    Args:
        latent_dim: size of ``z``.
        num_classes, canvas, embed_dim, where: the condition (module docstring).
        width: ``w``, channels of the layer before the output.
    """

    def __init__(self, latent_dim: int, num_classes: int = 10, canvas: int = 64,
                 embed_dim: int = 16, width: int = 16, where: bool = True) -> None:
        super().__init__(num_classes, canvas, embed_dim, where)
        self.latent_dim = int(latent_dim)
        self.data_shape = (1, canvas, canvas)
        w, s = int(width), canvas // 8
        self.fc = nn.Linear(latent_dim + embed_dim, 4 * w * s * s)
        self.start = (4 * w, s, s)
        self.up1 = nn.Sequential(nn.BatchNorm2d(4 * w), nn.ReLU(),
                                 nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w),
                                 nn.ReLU())
        self.mix = nn.Sequential(nn.Conv2d(2 * w + embed_dim, 2 * w, 3, 1, 1),
                                 nn.BatchNorm2d(2 * w), nn.ReLU())
        self.up2 = nn.Sequential(nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w),
                                 nn.ReLU())
        self.out = nn.Sequential(nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z: Tensor, cond: Tensor) -> Tensor:
        """``z (B, latent_dim)``, ``cond (B, 5)`` -> canvases ``(B, 1, canvas, canvas)``."""
        e, where = self.what_where(cond)
        h = self.up1(self.fc(torch.cat([z, e], 1)).view(-1, *self.start))
        h = self.mix(torch.cat([h, where], 1))
        return self.out(self.up2(h))


class GAWWNDiscriminator(_BoxConditioned):
    """``D(x, cond)``: 4×4 stride-2 convolutions ``1 -> w -> 2w`` (to ``c/4``); the box map
    joins there; ``-> 4w -> 4w`` (to ``c/16``), linear to one logit (LeakyReLU 0.2, BatchNorm
    after all but the first).

    Args:
        num_classes, canvas, embed_dim, where: the condition (module docstring).
        width: ``w``, channels of the first convolution.
    """

    def __init__(self, num_classes: int = 10, canvas: int = 64, embed_dim: int = 16,
                 width: int = 16, where: bool = True) -> None:
        super().__init__(num_classes, canvas, embed_dim, where)
        w = int(width)
        self.down = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.BatchNorm2d(2 * w), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(
            nn.Conv2d(2 * w + embed_dim, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4 * w * (canvas // 16) ** 2, 1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """``x (B, 1, canvas, canvas)``, ``cond (B, 5)`` -> logits ``(B,)``."""
        _, where = self.what_where(cond)
        h = self.joint(torch.cat([self.down(x), where], 1))
        return self.head(h.flatten(1)).squeeze(1)


__all__ = ["GAWWNDiscriminator", "GAWWNGenerator", "box_map", "box_mask"]
