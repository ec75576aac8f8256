"""The U-Net generator of pix2pix (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation
with Conditional Adversarial Networks", §3.2.1 and appendix 6.1.1).

An encoder of ``depth`` 4×4 stride-2 convolutions (``C_k``: convolution, batch norm,
LeakyReLU 0.2; no batch norm on the first nor on the innermost layer) halves the side at each
level; a decoder of 4×4 stride-2 transposed convolutions (ReLU, transposed convolution, batch
norm) doubles it back, each level reading the previous decoder output concatenated with the
encoder output of the same size (the skip connections). The ``dropout_layers`` decoder layers
nearest the bottleneck apply dropout 0.5 — the generator's only noise (the paper's ``CD_k``,
"noise in the form of dropout"). The last layer maps to ``out_channels`` with a tanh.

Widths are ``min(base_width · 2^i, max_width)`` at encoder level ``i``: the paper's 256×256
generator is ``depth=8, base_width=64, max_width=512, dropout_layers=3``; for 28×28 digits
``depth=2`` goes 28 → 14 → 7 and back. Weights ~ N(0, 0.02) (appendix 6.2); as in the official
code (``unet_256``: 54,413,955 parameters) only the output layer has a bias.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.nets.dcgan import LEAKY_SLOPE, init_dcgan_weights


class UNetGenerator(nn.Module):
    """``x (B, in_channels, H, W) -> y (B, out_channels, H, W)`` in [-1, 1].

    Args:
        in_channels: channels of the source images.
        out_channels: channels of the target images.
        image_size: side H = W of the images (a multiple of ``2**depth``).
        depth: encoder levels (stride-2 convolutions), at least 1.
        base_width: channels of the first encoder level.
        max_width: the widths' cap.
        dropout: dropout probability of the ``CD_k`` decoder layers.
        dropout_layers: decoder layers with dropout, counted from the bottleneck (the output
            layer never has any).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 1, image_size: int = 28,
                 depth: int = 2, base_width: int = 64, max_width: int = 512,
                 dropout: float = 0.5, dropout_layers: int = 3) -> None:
        super().__init__()
        if depth < 1 or image_size % 2**depth:
            raise GanlabError(f"a U-Net of depth {depth} needs images whose side is a multiple "
                              f"of {2**depth}; got {image_size}")
        if not 0 <= dropout < 1:
            raise GanlabError(f"the U-Net's dropout must be in [0, 1); got {dropout}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.image_size, self.depth = int(image_size), int(depth)
        widths = [min(base_width * 2**i, max_width) for i in range(depth)]
        self.widths = widths
        self.down = nn.ModuleList()
        for i, width in enumerate(widths):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(LEAKY_SLOPE)]
            norm = 0 < i < depth - 1
            layers.append(nn.Conv2d(in_channels if i == 0 else widths[i - 1], width, 4, 2, 1,
                                    bias=False))
            if norm:
                layers.append(nn.BatchNorm2d(width))
            self.down.append(nn.Sequential(*layers))
        self.up = nn.ModuleList()
        for i, width in enumerate(widths):
            inner = i == depth - 1
            out = out_channels if i == 0 else widths[i - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(width if inner else 2 * width, out, 4, 2, 1,
                                                    bias=i == 0)]
            if i == 0:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.BatchNorm2d(out))
                if depth - i <= dropout_layers and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))
        init_dcgan_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, self.image_size,
                                                  self.image_size):
            raise GanlabError(f"the U-Net takes images (B, {self.in_channels}, "
                              f"{self.image_size}, {self.image_size}); got {tuple(x.shape)}")
        skips = []
        h = x
        for layer in self.down:
            h = layer(h)
            skips.append(h)
        h = self.up[-1](skips[-1])
        for i in range(self.depth - 2, -1, -1):
            h = self.up[i](torch.cat([h, skips[i]], 1))
        return h


__all__ = ["UNetGenerator"]
