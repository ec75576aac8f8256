"""CycleGAN's networks (Zhu et al. 2017, appendix 7.2), made small enough for a CPU.

- :class:`ResnetTranslator`: Johnson et al.'s residual image-to-image generator, ``c7s1-k``,
  ``num_downsampling`` stride-2 convolutions doubling the width, ``num_blocks`` residual blocks,
  as many stride-1/2 transposed convolutions halving it, ``c7s1-C`` and tanh; reflection
  padding and instance normalisation (no affine parameters, no running statistics, as the
  authors' code) after every convolution but the last. The paper: ``k = 64``, 2
  downsamplings, 6 or 9 blocks.
- :class:`PatchDiscriminator`: the 70×70 PatchGAN with ``num_layers`` stride-2 ``4×4``
  convolutions (``C64-C128-C256`` in the paper, LeakyReLU 0.2, instance norm from the second),
  one stride-1 ``4×4`` convolution, and a ``4×4`` convolution to one output per patch
  ``(B, 1, h, w)`` (no sigmoid: the least-squares costs read it raw).

Weights ~ N(0, 0.02), biases 0 (the authors' ``init_type=normal``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ganlab.core.errors import GanlabError

LEAKY_SLOPE = 0.2


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """Convolution weights ~ N(0, ``std``), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def image_shape(data_shape: Sequence[int], what: str) -> tuple[int, int, int]:
    """``(C, H, W)`` of ``data_shape``, or one line saying ``what`` needs images."""
    shape = tuple(int(v) for v in data_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise GanlabError(f"{what} needs images (C, H, W); got data_shape {shape}")
    return shape  # type: ignore[return-value]


class ResidualBlock(nn.Module):
    """``x + IN(conv3(ReLU(IN(conv3(x)))))`` with reflection padding."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width),
            nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3), nn.InstanceNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetTranslator(nn.Module):
    """``image (B, C, H, W) -> image (B, C, H, W)`` in [-1, 1] (module docstring).

    Args:
        data_shape: ``(C, H, W)``; ``H`` and ``W`` divisible by ``2**num_downsampling``.
        width: channels ``k`` of the first convolution.
        num_downsampling: stride-2 convolutions (and as many upsamplings).
        num_blocks: residual blocks at the lowest resolution.
    """

    def __init__(self, data_shape: Sequence[int], width: int = 16, num_downsampling: int = 1,
                 num_blocks: int = 2) -> None:
        super().__init__()
        c, h, w = image_shape(data_shape, "model=cyclegan's generator")
        if width < 1 or num_downsampling < 0 or num_blocks < 0:
            raise GanlabError(f"the translator needs width >= 1 and num_downsampling, "
                              f"num_blocks >= 0; got {width}, {num_downsampling}, {num_blocks}")
        if h % 2**num_downsampling or w % 2**num_downsampling:
            raise GanlabError(f"the translator's {num_downsampling} downsamplings need sides "
                              f"divisible by {2**num_downsampling}; got {h}x{w}")
        self.data_shape = (c, h, w)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(c, width, 7),
                                   nn.InstanceNorm2d(width), nn.ReLU()]
        k = width
        for _ in range(num_downsampling):
            layers += [nn.Conv2d(k, 2 * k, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * k),
                       nn.ReLU()]
            k *= 2
        layers += [ResidualBlock(k) for _ in range(num_blocks)]
        for _ in range(num_downsampling):
            layers += [nn.ConvTranspose2d(k, k // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(k // 2), nn.ReLU()]
            k //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(k, c, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.data_shape:
            raise GanlabError(f"the translator takes images {self.data_shape}; got "
                              f"{tuple(x.shape[1:])}")
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """``image (B, C, H, W) -> one raw score per patch (B, 1, h, w)`` (module docstring).

    Args:
        data_shape: ``(C, H, W)``.
        width: channels of the first convolution (doubled by each later one, at most 8x).
        num_layers: stride-2 convolutions (3 in the paper's 70×70 PatchGAN).
    """

    def __init__(self, data_shape: Sequence[int], width: int = 16, num_layers: int = 2) -> None:
        super().__init__()
        c, h, w = image_shape(data_shape, "model=cyclegan's discriminator")
        if width < 1 or num_layers < 1:
            raise GanlabError(f"the PatchGAN needs width >= 1 and num_layers >= 1; got {width}, "
                              f"{num_layers}")
        side = min(h, w)
        for _ in range(num_layers):
            side = side // 2
        if side - 2 < 1:
            raise GanlabError(f"a {num_layers}-layer PatchGAN needs larger images than {h}x{w}")
        self.data_shape = (c, h, w)
        layers: list[nn.Module] = [nn.Conv2d(c, width, 4, stride=2, padding=1),
                                   nn.LeakyReLU(LEAKY_SLOPE)]
        k = width
        for n in range(1, num_layers + 1):
            k_next = width * min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers += [nn.Conv2d(k, k_next, 4, stride=stride, padding=1),
                       nn.InstanceNorm2d(k_next), nn.LeakyReLU(LEAKY_SLOPE)]
            k = k_next
        layers.append(nn.Conv2d(k, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, x: Tensor) -> Tensor:
        if tuple(x.shape[1:]) != self.data_shape:
            raise GanlabError(f"the PatchGAN takes images {self.data_shape}; got "
                              f"{tuple(x.shape[1:])}")
        return self.net(x)


__all__ = ["PatchDiscriminator", "ResidualBlock", "ResnetTranslator", "init_normal"]
