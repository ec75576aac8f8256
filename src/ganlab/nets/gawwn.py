"""GAWWN's networks with the bounding-box pathway (Reed, Akata, Mohan, Tenka, Schiele & Lee
2016, "Learning What and Where to Draw", §3.1, Fig. 3), small convolutional nets for a CPU.

Both players read a condition ``(B, 5) = (label, x0, y0, x1, y1)`` (integer pixels, half-open
box on a ``canvas × canvas`` image). "What": a learned class embedding ``e_y`` (``embed_dim``).
"Where", at ``canvas / 4`` resolution: :func:`box_map`, ``e_y`` replicated spatially inside the
box and zero outside, concatenated to the feature maps there; and the paper's local pathway
through a spatial transformer (``grid_sample``): G computes a feature map from ``[z, e_y]`` in
the box's own frame and :func:`place_in_box` draws it into the box, D reads its feature map of
the box into the box's frame (:func:`crop_box`) and judges it with ``e_y``. Both players also
have a global pathway (G: ``[z, e_y]`` to its first layer; D: the whole canvas with the map).

``where=False`` switches the box off: every box is the whole canvas (the map covers it, the
transformers map the canvas onto itself), whatever the condition's box (the class-only
baseline: the same networks and parameters, the box ignored).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def _cell_centres(size: int, canvas: int, device: torch.device) -> Tensor:
    """Pixel coordinates of the centres of ``size`` cells over ``canvas`` pixels."""
    return (torch.arange(size, device=device, dtype=torch.float32) + 0.5) * (canvas / size)


def place_in_box(template: Tensor, boxes: Tensor, size: int, canvas: int) -> Tensor:
    """The spatial transformer that draws a box-frame feature map ``(B, C, h, w)`` into its
    box on a ``size × size`` grid over the canvas (bilinear, ``grid_sample``; 0 in the cells
    that do not overlap the box, :func:`box_mask`): cell centre ``p`` reads the template at
    ``u = 2 (p - x0) / (x1 - x0) - 1`` (``align_corners=False``: ``±1`` are its outer edges)."""
    boxes = boxes.to(template)
    centres = _cell_centres(size, canvas, template.device)
    u = 2 * (centres[None] - boxes[:, 0:1]) / (boxes[:, 2:3] - boxes[:, 0:1]) - 1  # (B, size)
    v = 2 * (centres[None] - boxes[:, 1:2]) / (boxes[:, 3:4] - boxes[:, 1:2]) - 1
    grid = torch.stack([u[:, None, :].expand(-1, size, -1), v[:, :, None].expand(-1, -1, size)],
                       dim=-1)
    placed = F.grid_sample(template, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    return placed * box_mask(boxes, size, canvas)[:, None]


def crop_box(features: Tensor, boxes: Tensor, size: int, canvas: int) -> Tensor:
    """The spatial transformer that reads the box of a canvas-frame feature map
    ``(B, C, H, W)`` into the box frame, ``(B, C, size, size)`` (bilinear, ``grid_sample``):
    box-frame cell centre ``u`` reads the canvas at ``p = x0 + (u + 1) (x1 - x0) / 2``."""
    boxes = boxes.to(features)
    u = (torch.arange(size, device=features.device, dtype=features.dtype) + 0.5) / size  # (0, 1)
    px = boxes[:, 0:1] + u[None] * (boxes[:, 2:3] - boxes[:, 0:1])  # (B, size), pixels
    py = boxes[:, 1:2] + u[None] * (boxes[:, 3:4] - boxes[:, 1:2])
    gx, gy = 2 * px / canvas - 1, 2 * py / canvas - 1
    grid = torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)],
                       dim=-1)
    return F.grid_sample(features, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


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

    def boxes(self, cond: Tensor) -> Tensor:
        """The boxes the players read: the condition's, or the whole canvas (``where=False``)."""
        boxes = cond[:, 1:5]
        if not self.where:
            boxes = torch.tensor([0.0, 0.0, self.canvas, self.canvas], device=cond.device,
                                 dtype=cond.dtype).expand_as(boxes)
        return boxes

    def what_where(self, cond: Tensor) -> tuple[Tensor, Tensor]:
        """``e_y (B, E)`` and the map ``(B, E, canvas/4, canvas/4)`` of conditions ``cond``."""
        e = self.embed(cond[:, 0].long())
        return e, box_map(e, self.boxes(cond), self.map_size, self.canvas)


class GAWWNGenerator(_BoxConditioned):
    """``G(z, cond)``. Global pathway: ``[z, e_y]`` -> linear -> ``4w × c/8 × c/8`` -> up to
    ``2w × c/4``. Local pathway: ``[z, e_y]`` -> linear -> ``w × 8 × 8`` in the box's frame ->
    ``w × 16 × 16``, drawn into the box by :func:`place_in_box` at ``c/4``. Both, with the box
    map, join there (3×3 conv) -> up to ``c/2`` -> up to ``c``, tanh (BatchNorm + ReLU between).

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
        self.local_fc = nn.Linear(latent_dim + embed_dim, w * 8 * 8)
        self.local_start = (w, 8, 8)
        self.local_up = nn.Sequential(nn.BatchNorm2d(w), nn.ReLU(),
                                      nn.ConvTranspose2d(w, w, 4, 2, 1), nn.BatchNorm2d(w),
                                      nn.ReLU())
        self.mix = nn.Sequential(nn.Conv2d(3 * w + embed_dim, 2 * w, 3, 1, 1),
                                 nn.BatchNorm2d(2 * w), nn.ReLU())
        self.up2 = nn.Sequential(nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.BatchNorm2d(w),
                                 nn.ReLU())
        self.out = nn.Sequential(nn.ConvTranspose2d(w, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z: Tensor, cond: Tensor) -> Tensor:
        """``z (B, latent_dim)``, ``cond (B, 5)`` -> canvases ``(B, 1, canvas, canvas)``."""
        e, where = self.what_where(cond)
        ze = torch.cat([z, e], 1)
        h = self.up1(self.fc(ze).view(-1, *self.start))
        local = self.local_up(self.local_fc(ze).view(-1, *self.local_start))
        local = place_in_box(local, self.boxes(cond), self.map_size, self.canvas)
        h = self.mix(torch.cat([h, local, where], 1))
        return self.out(self.up2(h))


class GAWWNDiscriminator(_BoxConditioned):
    """``D(x, cond)``: 4×4 stride-2 convolutions ``1 -> w -> 2w`` (to ``c/4``). Global
    pathway: with the box map -> ``4w -> 4w`` (to ``c/16``). Local pathway: the box read into
    its frame by :func:`crop_box` (``2w × 8 × 8``) with ``e_y`` replicated -> 3×3 conv ``4w``
    -> stride 2 ``4w × 4 × 4``. A linear layer on both gives the logit (LeakyReLU 0.2,
    BatchNorm after all but the first convolution).

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
        self.local = nn.Sequential(
            nn.Conv2d(2 * w + embed_dim, 4 * w, 3, 1, 1), nn.BatchNorm2d(4 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 4 * w, 4, 2, 1), nn.BatchNorm2d(4 * w), nn.LeakyReLU(0.2))
        self.head = nn.Linear(4 * w * (canvas // 16) ** 2 + 4 * w * 16, 1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """``x (B, 1, canvas, canvas)``, ``cond (B, 5)`` -> logits ``(B,)``."""
        e, where = self.what_where(cond)
        h = self.down(x)
        glob = self.joint(torch.cat([h, where], 1))
        crop = crop_box(h, self.boxes(cond), 8, self.canvas)
        local = self.local(torch.cat([crop, e[:, :, None, None].expand(-1, -1, 8, 8)], 1))
        return self.head(torch.cat([glob.flatten(1), local.flatten(1)], 1)).squeeze(1)


__all__ = ["GAWWNDiscriminator", "GAWWNGenerator", "box_map", "box_mask", "crop_box",
           "place_in_box"]
