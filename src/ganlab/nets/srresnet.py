"""SRGAN's networks (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", Figure 4), sized for 7×7 → 28×28 digits on a CPU.

- :class:`SRResNet`, the generator: a 9×9 convolution and PReLU, ``B`` residual blocks (3×3
  conv, BN, PReLU, 3×3 conv, BN, identity skip), a 3×3 conv and BN with a skip from the first
  layer's output, ``log2(scale)`` sub-pixel stages (3×3 conv to 4× the width, pixel shuffle ×2,
  PReLU) and a 9×9 output convolution (tanh: images in [-1, 1]; or linear).
- :class:`SRGANDiscriminator`: 3×3 conv and LeakyReLU(0.2), then stages of a stride-1 and a
  stride-2 3×3 conv (each with BN and LeakyReLU), the width doubling per stage, a dense layer
  with LeakyReLU and a dense layer to one logit (the paper's sigmoid is in the loss).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ganlab.core.errors import GanlabError


class ResidualBlock(nn.Module):
    """``x + BN(conv(PReLU(BN(conv(x)))))`` with 3×3 convolutions of ``width`` channels."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """The SRResNet/SRGAN generator: ``(N, C, h, w) -> (N, C, scale·h, scale·w)``.

    Args:
        channels: C of the low- and high-resolution images.
        scale: the upscaling factor, a power of 2 (one pixel-shuffle ×2 stage per factor 2).
        width: channels of every hidden layer (the paper: 64).
        num_blocks: B, residual blocks (the paper: 16).
        output: ``tanh`` (images in [-1, 1]) or ``linear``.
    """

    def __init__(self, channels: int = 1, scale: int = 4, width: int = 32, num_blocks: int = 4,
                 output: str = "tanh") -> None:
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise GanlabError(f"the SRResNet's scale must be a power of 2 (>= 2); got {scale}")
        if output not in ("tanh", "linear"):
            raise GanlabError(f"the SRResNet's output must be tanh or linear; got {output!r}")
        if width < 1 or num_blocks < 0:
            raise GanlabError(f"the SRResNet needs width >= 1 and num_blocks >= 0; got "
                              f"width={width}, num_blocks={num_blocks}")
        self.channels, self.scale, self.width = int(channels), int(scale), int(width)
        self.num_blocks, self.output = int(num_blocks), output
        self.head = nn.Sequential(nn.Conv2d(channels, width, 9, padding=4), nn.PReLU(width))
        self.blocks = nn.Sequential(*[ResidualBlock(width) for _ in range(num_blocks)])
        self.trunk_end = nn.Sequential(nn.Conv2d(width, width, 3, padding=1),
                                       nn.BatchNorm2d(width))
        self.upsample = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(width, 4 * width, 3, padding=1), nn.PixelShuffle(2),
                          nn.PReLU(width))
            for _ in range(int(math.log2(scale)))
        ])
        self.tail = nn.Conv2d(width, channels, 9, padding=4)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise GanlabError(f"the SRResNet takes images (N, {self.channels}, h, w); got "
                              f"{tuple(x.shape)}")
        h = self.head(x)
        h = h + self.trunk_end(self.blocks(h))
        out = self.tail(self.upsample(h))
        return out.tanh() if self.output == "tanh" else out


class SRGANDiscriminator(nn.Module):
    """SRGAN's D: ``(N, C, H, W) -> logits (N,)``.

    Args:
        channels: C of the images.
        image_size: H = W, divisible by ``2**num_stages``.
        width: channels of the first layers (the paper: 64), doubled per stage.
        num_stages: stride-2 stages (the paper: 4 on 96×96 crops; 2 for 28×28: 28 → 7).
        hidden: units of the dense layer (the paper: 1024).
    """

    def __init__(self, channels: int = 1, image_size: int = 28, width: int = 16,
                 num_stages: int = 2, hidden: int = 128) -> None:
        super().__init__()
        if num_stages < 1 or image_size % 2**num_stages:
            raise GanlabError(f"the SRGAN discriminator's image_size {image_size} must be "
                              f"divisible by 2**num_stages = {2 ** max(num_stages, 0)}")
        self.channels, self.image_size = int(channels), int(image_size)

        def conv(c_in: int, c_out: int, stride: int, bn: bool = True) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                    *([nn.BatchNorm2d(c_out)] if bn else []), nn.LeakyReLU(0.2)]

        layers = conv(channels, width, 1, bn=False) + conv(width, width, 2)
        c = width
        for _ in range(1, num_stages):
            layers += conv(c, 2 * c, 1) + conv(2 * c, 2 * c, 2)
            c *= 2
        self.body = nn.Sequential(*layers)
        side = image_size // 2**num_stages
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * side * side, hidden),
                                  nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.channels, self.image_size,
                                                   self.image_size):
            raise GanlabError(f"the SRGAN discriminator takes images (N, {self.channels}, "
                              f"{self.image_size}, {self.image_size}); got {tuple(x.shape)}")
        return self.head(self.body(x)).squeeze(1)


__all__ = ["ResidualBlock", "SRGANDiscriminator", "SRResNet"]
