"""The PatchGAN discriminator of pix2pix (Isola et al. 2017, §3.2.2 and appendix 6.1.2).

D reads the source and the (real or generated) target concatenated along the channels and
returns a map of logits, one per overlapping patch: the paper's ``N × N`` PatchGAN classifies
each ``N × N`` patch as real or fake, and the cost averages over the map. Layers: ``n_layers``
4×4 stride-2 convolutions of widths ``min(base_width · 2^i, max_width)`` (no batch norm on the
first), one 4×4 stride-1 convolution, then a 4×4 stride-1 convolution to one channel; LeakyReLU
0.2 and batch norm between. With ``k_l`` and ``s_l`` the kernels and strides, the receptive
field of one logit is ``N = 1 + Σ_l (k_l - 1) ∏_{m<l} s_m``: ``n_layers=3`` is the paper's
70×70, ``n_layers=1`` its 16×16 (the digits' choice), ``n_layers=0`` a 7×7.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.nets.dcgan import LEAKY_SLOPE, init_dcgan_weights


def receptive_field(layers: list[tuple[int, int]]) -> int:
    """Side of the input window one output unit sees, for ``(kernel, stride)`` layers in
    order: ``1 + Σ_l (k_l - 1) ∏_{m<l} s_m``."""
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


class PatchGANDiscriminator(nn.Module):
    """``(x (B, source_channels, H, W), y (B, target_channels, H, W)) -> logits (B, 1, H', W')``.

    Args:
        source_channels: channels of x.
        target_channels: channels of y.
        n_layers: stride-2 convolutions (0 or more).
        base_width: channels of the first convolution.
        max_width: the widths' cap.
    """

    def __init__(self, source_channels: int = 1, target_channels: int = 1, n_layers: int = 3,
                 base_width: int = 64, max_width: int = 512) -> None:
        super().__init__()
        if n_layers < 0:
            raise GanlabError(f"a PatchGAN needs n_layers >= 0; got {n_layers}")
        self.source_channels, self.target_channels = int(source_channels), int(target_channels)
        self.n_layers = int(n_layers)
        widths = [min(base_width * 2**i, max_width) for i in range(n_layers + 1)]
        layers: list[nn.Module] = []
        channels = source_channels + target_channels
        for i, width in enumerate(widths):
            stride = 2 if i < n_layers else 1
            layers.append(nn.Conv2d(channels, width, 4, stride, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(LEAKY_SLOPE))
            channels = width
        layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)
        self.kernels = [(4, 2)] * n_layers + [(4, 1), (4, 1)]
        init_dcgan_weights(self)

    @property
    def receptive_field(self) -> int:
        """Side N of the ``N × N`` patch of the input that one logit judges."""
        return receptive_field(self.kernels)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.dim() != 4 or y.dim() != 4 or x.shape[1] != self.source_channels or \
                y.shape[1] != self.target_channels or x.shape[0] != y.shape[0] or \
                x.shape[-2:] != y.shape[-2:]:
            raise GanlabError(f"the PatchGAN judges pairs (B, {self.source_channels}, H, W) and "
                              f"(B, {self.target_channels}, H, W); got {tuple(x.shape)} and "
                              f"{tuple(y.shape)}")
        return self.net(torch.cat([x, y], 1))


__all__ = ["PatchGANDiscriminator", "receptive_field"]
