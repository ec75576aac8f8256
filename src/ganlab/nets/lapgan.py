"""The Laplacian pyramid and the networks of LAPGAN (Denton, Chintala, Szlam & Fergus 2015,
"Deep Generative Image Models using a Laplacian Pyramid of Adversarial Networks"; GAN_SPEC §7).

The pyramid (Burt & Adelson 1983; the paper's §3.1), with kornia's operators:

- ``d`` (:func:`down`): :func:`kornia.geometry.transform.pyrdown`: blur with the 5×5 binomial
  kernel ``w wᵀ``, ``w = [1, 4, 6, 4, 1] / 16`` (reflect border), then bilinear resampling to half
  the side (``align_corners=False``: at an exact factor of 2 this is the mean of each 2×2 block);
- ``u`` (:func:`up`): :func:`kornia.geometry.transform.pyrup`: bilinear resampling to twice the
  side (``align_corners=False``), then the same blur.

``I_0 = I``, ``I_{k+1} = d(I_k)``, ``h_k = I_k - u(I_{k+1})`` for ``k < K`` and ``h_K = I_K``
(eq. 1); ``I_k = u(I_{k+1}) + h_k`` recovers ``I_0`` exactly, up to float rounding (eq. 2). Every
side of ``I_0`` must be divisible by ``2^K`` (28 → 14 → 7, 32 → 16 → 8) and the coarsest side at
least 3 (the blur's reflect border). kornia's own ``build_laplacian_pyramid`` pads any side that
is not a power of two (28 to 32), so the pyramid is built here from its two operators.

Networks (the paper's §4, sized by the config): the coarsest level is a plain GAN (the lab's MLP
or DCGAN nets); each finer level ``k`` has a :class:`ResidualGenerator` ``G_k(z_k, l_k) -> h̃_k``,
``l_k = u(I_{k+1})``, the noise ``z_k`` a plane of the image's size beside its colour planes
(the paper's "4th colour plane"), and a :class:`ResidualDiscriminator` ``D_k(h, l_k)``.
:class:`LaplacianSampler` chains them: ``Ĩ_K = G_K(z_K)``, ``Ĩ_k = u(Ĩ_{k+1}) + G_k(z_k,
u(Ĩ_{k+1}))`` (eq. 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from kornia.geometry.transform import pyrdown, pyrup
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.nets.capabilities import network_capabilities

LEAKY_SLOPE = 0.2
#: The smallest side the 5×5 blur's reflect border accepts.
MIN_SIDE = 3


def down(x: Tensor) -> Tensor:
    """``d(x)``: blur (5×5 binomial, reflect) and halve the side: ``(B, C, H, W) -> (B, C, H/2,
    W/2)``."""
    return pyrdown(x, border_type="reflect", align_corners=False)


def up(x: Tensor) -> Tensor:
    """``u(x)``: double the side (bilinear) and blur (5×5 binomial, reflect)."""
    return pyrup(x, border_type="reflect", align_corners=False)


def check_pyramid_shape(data_shape: Sequence[int], levels: int) -> tuple[int, int, int]:
    """``(C, H, W)`` of an image shape that a pyramid of ``levels`` downsamplings fits; raises
    :class:`GanlabError` with one line otherwise."""
    shape = tuple(int(s) for s in data_shape)
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1:
        raise GanlabError(f"model.levels must be a positive integer, got {levels!r}")
    if len(shape) != 3:
        raise GanlabError(f"model=lapgan needs images (C, H, W); got data_shape {shape}")
    c, h, w = shape
    step = 2**levels
    if h % step or w % step:
        raise GanlabError(
            f"model.levels={levels} needs image sides divisible by 2^{levels} = {step}; got "
            f"data_shape {shape}"
        )
    if min(h, w) // step < MIN_SIDE:
        raise GanlabError(
            f"model.levels={levels} leaves a {h // step}x{w // step} coarsest image from "
            f"data_shape {shape}; the blur needs a side of at least {MIN_SIDE}"
        )
    return c, h, w


def gaussian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[I_0, ..., I_K]``, ``I_0 = x``, ``I_{k+1} = d(I_k)``, ``K = levels``."""
    check_pyramid_shape(x.shape[1:], levels)
    out = [x]
    for _ in range(levels):
        out.append(down(out[-1]))
    return out


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``[h_0, ..., h_{K-1}, I_K]``: ``h_k = I_k - u(I_{k+1})`` (eq. 1) and the low-pass
    residual ``I_K``."""
    gauss = gaussian_pyramid(x, levels)
    return [gauss[k] - up(gauss[k + 1]) for k in range(levels)] + [gauss[-1]]


def reconstruct(pyramid: Sequence[Tensor]) -> Tensor:
    """``I_0`` from ``[h_0, ..., h_{K-1}, I_K]``: ``I_k = u(I_{k+1}) + h_k`` (eq. 2)."""
    image = pyramid[-1]
    for h in reversed(pyramid[:-1]):
        image = up(image) + h
    return image


def _conv_stack(in_ch: int, width: int, num_layers: int, kernel_size: int, stride: int,
                batch_norm: bool, activation: nn.Module) -> list[nn.Module]:
    layers: list[nn.Module] = []
    ch = in_ch
    for _ in range(num_layers):
        layers.append(nn.Conv2d(ch, width, kernel_size, stride, kernel_size // 2,
                                bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(width))
        layers.append(activation)
        ch = width
    return layers


def _check_sizes(kind: str, **values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise GanlabError(f"{kind}: {name} must be at least 1; got {value}")
    if values.get("kernel_size", 1) % 2 == 0:
        raise GanlabError(f"{kind}: kernel_size must be odd; got {values['kernel_size']}")


class ResidualGenerator(nn.Module):
    """``G_k``: ``(z_k (B, noise_channels, H, W), l_k (B, C, H, W)) -> h̃_k (B, C, H, W)``.

    ``cat(l_k, z_k)`` on the channels, ``num_layers - 1`` convolutions (``kernel_size``, stride 1,
    same padding; batch norm when ``batch_norm``) with ReLU, and a last convolution to ``C``
    channels with no activation (a residual is signed and not bounded by 1). The paper's CIFAR-10
    G_k: 3 layers of 64 feature maps.
    """

    def __init__(self, data_shape: Sequence[int], noise_channels: int = 1, width: int = 64,
                 num_layers: int = 3, kernel_size: int = 5, batch_norm: bool = False) -> None:
        super().__init__()
        shape = tuple(int(s) for s in data_shape)
        if len(shape) != 3:
            raise GanlabError(f"ResidualGenerator needs images (C, H, W); got {shape}")
        _check_sizes("ResidualGenerator", noise_channels=noise_channels, width=width,
                     num_layers=num_layers, kernel_size=kernel_size)
        if num_layers < 2:
            raise GanlabError(f"ResidualGenerator: num_layers must be at least 2; got "
                              f"{num_layers}")
        self.data_shape = shape
        self.noise_channels = int(noise_channels)
        channels = shape[0]
        layers = _conv_stack(channels + self.noise_channels, width, num_layers - 1, kernel_size,
                             1, batch_norm, nn.ReLU())
        layers.append(nn.Conv2d(width, channels, kernel_size, 1, kernel_size // 2))
        self.net = nn.Sequential(*layers)

    @property
    def noise_shape(self) -> tuple[int, int, int]:
        """The shape of one ``z_k``: ``(noise_channels, H, W)``."""
        return (self.noise_channels, *self.data_shape[1:])

    def capabilities(self) -> frozenset[str]:
        """``batch_norm`` when it has batch-norm layers."""
        return network_capabilities(self)

    def forward(self, z: Tensor, condition: Tensor) -> Tensor:
        """``h̃_k = G_k(z_k, l_k)``."""
        return self.net(torch.cat([condition, z.view(z.shape[0], *self.noise_shape)], 1))


class ResidualDiscriminator(nn.Module):
    """``D_k``: ``(h (B, C, H, W), l_k (B, C, H, W)) -> logits (B,)``.

    ``cat(h, l_k)`` on the channels (the paper adds ``l_k`` to ``h`` before the first
    convolution; the concatenation lets the first, linear, layer form that sum or anything
    else), ``num_layers`` stride-2 convolutions (``kernel_size``, LeakyReLU(0.2), dropout when
    ``dropout > 0``) whose flattening is ``features``, and a linear head. The paper's CIFAR-10
    D_k: 2 layers of 128 feature maps.
    """

    def __init__(self, data_shape: Sequence[int], width: int = 128, num_layers: int = 2,
                 kernel_size: int = 5, dropout: float = 0.0) -> None:
        super().__init__()
        shape = tuple(int(s) for s in data_shape)
        if len(shape) != 3:
            raise GanlabError(f"ResidualDiscriminator needs images (C, H, W); got {shape}")
        _check_sizes("ResidualDiscriminator", width=width, num_layers=num_layers,
                     kernel_size=kernel_size)
        if not 0.0 <= dropout < 1.0:
            raise GanlabError(f"ResidualDiscriminator: dropout must be in [0, 1); got {dropout}")
        self.data_shape = shape
        layers: list[nn.Module] = []
        ch = 2 * shape[0]
        for _ in range(num_layers):
            layers += [nn.Conv2d(ch, width, kernel_size, 2, kernel_size // 2),
                       nn.LeakyReLU(LEAKY_SLOPE)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            ch = width
        self.body = nn.Sequential(*layers)
        h, w = shape[1:]
        for _ in range(num_layers):
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        self.feature_dim = width * h * w
        self.head_linear = nn.Linear(self.feature_dim, 1)

    def features(self, x: Tensor) -> Tensor:
        """``cat(h, l_k) (B, 2C, H, W) -> (B, feature_dim)``."""
        return self.body(x).flatten(1)

    def head(self, f: Tensor) -> Tensor:
        """``(B, feature_dim) -> (B,)`` logits."""
        return self.head_linear(f).squeeze(1)

    def capabilities(self) -> frozenset[str]:
        """``features`` (``features()``, ``head()``, ``feature_dim``)."""
        return network_capabilities(self)

    def forward(self, h: Tensor, condition: Tensor) -> Tensor:
        """``D_k(h, l_k)``."""
        return self.head(self.features(torch.cat([h, condition], 1)))


class LaplacianSampler(nn.Module):
    """The LAPGAN sample of a flat latent (eq. 3): ``Ĩ_K = G_K(z_K)``, then for ``k = K-1 ..
    0``: ``Ĩ_k = u(Ĩ_{k+1}) + G_k(z_k, u(Ĩ_{k+1}))``.

    ``latent`` is ``cat(z_K, z_{K-1}.flatten(), ..., z_0.flatten())`` of :attr:`latent_dim`
    columns. It holds the players, not copies (its parameters are theirs). The final image is
    clamped to the data's range [-1, 1] (the intermediate ones are not).

    Args:
        coarse: ``G_K``, ``(B, coarse_dim) -> (B, C, H/2^K, W/2^K)``.
        residuals: ``[G_0, ..., G_{K-1}]`` (:class:`ResidualGenerator`, finest first).
        coarse_dim: size of ``z_K``.
    """

    def __init__(self, coarse: nn.Module, residuals: Sequence[nn.Module], coarse_dim: int
                 ) -> None:
        super().__init__()
        self.coarse = coarse
        self.residuals = nn.ModuleList(residuals)
        self.coarse_dim = int(coarse_dim)
        self.splits = [self.coarse_dim] + [math.prod(g.noise_shape)
                                           for g in reversed(self.residuals)]

    @property
    def latent_dim(self) -> int:
        return sum(self.splits)

    def levels(self, latent: Tensor) -> list[dict[str, Tensor]]:
        """Every step of the recurrence, coarsest first: ``{"image": Ĩ_K}``, then for each finer
        level ``{"condition": u(Ĩ_{k+1}), "residual": h̃_k, "image": Ĩ_k}``."""
        if latent.dim() != 2 or latent.shape[1] != self.latent_dim:
            raise GanlabError(f"LAPGAN latents have {self.latent_dim} columns; got shape "
                              f"{tuple(latent.shape)}")
        parts = latent.split(self.splits, 1)
        image = self.coarse(parts[0])
        steps = [{"image": image}]
        for z, g in zip(parts[1:], reversed(self.residuals), strict=True):
            condition = up(image)
            residual = g(z, condition)
            image = condition + residual
            steps.append({"condition": condition, "residual": residual, "image": image})
        return steps

    def forward(self, latent: Tensor) -> Tensor:
        """``Ĩ_0`` clamped to [-1, 1]."""
        return self.levels(latent)[-1]["image"].clamp(-1, 1)


__all__ = [
    "LaplacianSampler",
    "ResidualDiscriminator",
    "ResidualGenerator",
    "check_pyramid_shape",
    "down",
    "gaussian_pyramid",
    "laplacian_pyramid",
    "reconstruct",
    "up",
]
