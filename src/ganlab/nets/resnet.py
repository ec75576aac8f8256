"""SNGAN's ResNet generator and discriminator (Miyato, Kataoka, Koyama & Yoshida 2018,
"Spectral Normalization for Generative Adversarial Networks", Appendix B.4, Table 4 for
32x32 CIFAR-10; the 64x64 variant of Miyato & Koyama 2018 as in Mimicry's ``sngan_64``).

Blocks (the authors' chainer code, ``pfnet-research/sngan_projection``):

- G block: ``BN -> ReLU -> up(x2, nearest) -> conv3x3 -> BN -> ReLU -> conv3x3`` plus a shortcut
  ``up -> conv1x1``; hidden width = output width.
- D block: ``ReLU -> conv3x3 -> ReLU -> conv3x3 [-> avgpool2]`` plus a shortcut
  ``conv1x1 [-> avgpool2]`` when the width changes or the block downsamples, else the identity;
  hidden width = input width. D's first ("optimized") block has no leading ReLU:
  ``conv3x3 -> ReLU -> conv3x3 -> avgpool2`` plus ``avgpool2 -> conv1x1``.
- D ends with ReLU and a global *sum* pooling (the features), then a linear layer (the head).
  Every convolution and linear layer of D is spectrally normalised (one power iteration per
  forward in training mode, Algorithm 1); G has batch norm and no spectral norm.
- Initialisation: Glorot-uniform with gain sqrt(2) for the residual convolutions and gain 1
  for shortcuts, G's first linear layer and last convolution, D's linear head; biases 0.

Architectures (``arch``):

- ``sngan32`` (Table 4): G: ``z -> linear -> s x s x w``, ``n`` up-blocks of constant width ``w``
  (paper: 256), ``BN, ReLU, conv3x3 -> C, tanh``. D: optimized down-block and one more
  down-block, then two plain blocks, all of width ``w`` (paper: 128).
- ``sngan64``: G widths halve from ``w`` (paper: 1024) at each of the ``n`` up-blocks; D has
  ``n + 1`` down-blocks whose widths double up to ``w`` (paper: 1024), ending at ``s/2 x s/2``.
- ``auto``: ``sngan64`` for images of side 64 or more, else ``sngan32``.

Images ``(C, H, W)`` with ``H == W == s * 2**n``, ``s`` in {4, 6, 7}: 32 = 4·2³ gives Table 4
exactly; 48 = 6·2³ is STL-10's size; 28 = 7·2² (MNIST) is a "28-geometry": G starts from 7x7
and makes two up-blocks instead of three, D is Table 4's unchanged (its two down-blocks end at
7x7 instead of 8x8). No padding or resizing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from ganlab.core.errors import GanlabError
from ganlab.nets.capabilities import network_capabilities

ARCHS = ("auto", "sngan32", "sngan64")
#: Paper widths: (G, D) per architecture.
PAPER_WIDTHS = {"sngan32": (256, 128), "sngan64": (1024, 1024)}


def resnet_geometry(data_shape: Sequence[int], arch: str) -> tuple[int, int, int, str]:
    """``(channels, s, n, arch)`` for an image shape ``(C, s * 2**n, s * 2**n)``, with ``auto``
    resolved; raises :class:`GanlabError` for any other shape or architecture."""
    if arch not in ARCHS:
        raise GanlabError(f"resnet: unknown arch '{arch}'; valid: {', '.join(ARCHS)}")
    shape = tuple(int(v) for v in data_shape)
    if len(shape) == 3 and shape[0] >= 1 and shape[1] == shape[2]:
        side = shape[1]
        for s in (4, 6, 7):
            ratio = side // s
            if side % s == 0 and ratio >= 2 and ratio & (ratio - 1) == 0:
                n = ratio.bit_length() - 1
                resolved = arch if arch != "auto" else ("sngan64" if side >= 64 else "sngan32")
                if resolved == "sngan64" and s % 2:
                    break
                return shape[0], s, n, resolved
    raise GanlabError(
        "resnet needs square images of side s·2^n with s in {4, 6, 7} and n ≥ 1 (e.g. 28, 32, "
        f"48, 64; arch sngan64 needs s even); got data_shape {shape} with arch '{arch}'"
    )


def _glorot(layer: nn.Conv2d | nn.Linear, gain: float) -> nn.Module:
    nn.init.xavier_uniform_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _sn(layer: nn.Module, on: bool) -> nn.Module:
    return spectral_norm(layer) if on else layer


class GBlock(nn.Module):
    """SNGAN's up-sampling residual block: ``(B, in, h, w) -> (B, out, 2h, 2w)``."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_ch)
        self.conv1 = _glorot(nn.Conv2d(in_ch, out_ch, 3, 1, 1), math.sqrt(2))
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.conv2 = _glorot(nn.Conv2d(out_ch, out_ch, 3, 1, 1), math.sqrt(2))
        self.shortcut = _glorot(nn.Conv2d(in_ch, out_ch, 1, 1, 0), 1.0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """SNGAN's discriminator residual block (``first``: the optimized block, no leading ReLU,
    pooling before the shortcut's convolution)."""

    def __init__(
        self, in_ch: int, out_ch: int, downsample: bool, first: bool = False, sn: bool = True
    ) -> None:
        super().__init__()
        hidden = out_ch if first else in_ch
        self.first = first
        self.downsample = downsample or first
        self.conv1 = _sn(_glorot(nn.Conv2d(in_ch, hidden, 3, 1, 1), math.sqrt(2)), sn)
        self.conv2 = _sn(_glorot(nn.Conv2d(hidden, out_ch, 3, 1, 1), math.sqrt(2)), sn)
        learnable = first or in_ch != out_ch or downsample
        self.shortcut = (
            _sn(_glorot(nn.Conv2d(in_ch, out_ch, 1, 1, 0), 1.0), sn) if learnable else None
        )

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.first:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        sc = self.shortcut(x)
        return h + (F.avg_pool2d(sc, 2) if self.downsample else sc)


class ResNetGenerator(nn.Module):
    """``z (B, latent_dim) -> image (B, C, H, W)`` in [-1, 1] (SNGAN's ResNet G).

    Args:
        latent_dim: size of ``z`` (paper: 128).
        data_shape: ``(C, H, W)``, see the module docstring.
        base_width: ``w``; ``None``: the paper's (256 for ``sngan32``, 1024 for ``sngan64``).
        arch: ``auto``, ``sngan32`` or ``sngan64``.
    """

    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        base_width: int | None = None,
        arch: str = "auto",
    ) -> None:
        super().__init__()
        channels, s, n, arch = resnet_geometry(data_shape, arch)
        width = PAPER_WIDTHS[arch][0] if base_width is None else int(base_width)
        if latent_dim < 1 or width < 1 or (arch == "sngan64" and width % 2**n):
            raise GanlabError(
                f"resnet needs latent_dim ≥ 1 and base_width ≥ 1 (a multiple of 2^{n} for "
                f"sngan64); got {latent_dim}, {width}"
            )
        self.latent_dim = int(latent_dim)
        self.data_shape = (channels, s * 2**n, s * 2**n)
        self.arch, self.bottom = arch, s
        widths = [width // 2**i if arch == "sngan64" else width for i in range(n + 1)]
        self.widths = widths
        self.linear = _glorot(nn.Linear(self.latent_dim, s * s * widths[0]), 1.0)
        self.blocks = nn.Sequential(*(GBlock(widths[i], widths[i + 1]) for i in range(n)))
        self.bn = nn.BatchNorm2d(widths[-1])
        self.conv = _glorot(nn.Conv2d(widths[-1], channels, 3, 1, 1), 1.0)

    def forward(self, z: Tensor) -> Tensor:
        """``(B, latent_dim) -> (B, C, H, W)``."""
        h = self.linear(z).view(z.shape[0], self.widths[0], self.bottom, self.bottom)
        return self.conv(F.relu(self.bn(self.blocks(h)))).tanh()


class ResNetDiscriminator(nn.Module):
    """``image -> logit`` (SNGAN's ResNet D, spectrally normalised); ``features`` are the
    globally sum-pooled ReLU activations of the last block, ``head`` a linear layer.

    Args:
        data_shape: ``(C, H, W)``, see the module docstring.
        base_width: ``w``; ``None``: the paper's (128 for ``sngan32``, 1024 for ``sngan64``).
        arch: ``auto``, ``sngan32`` or ``sngan64``.
        spectral_norm: normalise every convolution and the linear head (the paper: yes).
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        base_width: int | None = None,
        arch: str = "auto",
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        channels, s, n, arch = resnet_geometry(data_shape, arch)
        width = PAPER_WIDTHS[arch][1] if base_width is None else int(base_width)
        if width < 1 or (arch == "sngan64" and width % 2**n):
            raise GanlabError(
                f"resnet needs base_width ≥ 1 (a multiple of 2^{n} for sngan64); got {width}"
            )
        if arch == "sngan32" and (s * 2**n) % 4:
            raise GanlabError(
                f"resnet sngan32 needs an image side divisible by 4; got {s * 2**n}"
            )
        self.data_shape = (channels, s * 2**n, s * 2**n)
        self.arch = arch
        sn = bool(spectral_norm)
        self.spectral_norm = sn
        if arch == "sngan32":
            blocks = [DBlock(channels, width, True, first=True, sn=sn),
                      DBlock(width, width, True, sn=sn),
                      DBlock(width, width, False, sn=sn),
                      DBlock(width, width, False, sn=sn)]
        else:
            widths = [width // 2**i for i in range(n, -1, -1)]
            blocks = [DBlock(channels, widths[0], True, first=True, sn=sn)]
            blocks += [DBlock(widths[i], widths[i + 1], True, sn=sn) for i in range(n)]
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = width
        self.linear = _sn(_glorot(nn.Linear(width, 1), 1.0), sn)

    def capabilities(self) -> frozenset[str]:
        """``features``, and ``spectral_norm`` when its layers are normalised already (so the
        ``spectral_norm`` trick, which would normalise them twice, is refused)."""
        own = {"spectral_norm"} if self.spectral_norm else set()
        return network_capabilities(self) | own

    def features(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, feature_dim)``: ReLU, then the sum over positions."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def head(self, f: Tensor) -> Tensor:
        """``(B, feature_dim) -> (B,)`` logits."""
        return self.linear(f).flatten()

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B,)`` logits."""
        return self.head(self.features(x))
