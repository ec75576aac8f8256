"""DCGAN generator and discriminator (Radford, Metz & Chintala 2016, "Unsupervised
Representation Learning with Deep Convolutional GANs").

Architecture guidelines (Radford et al. §3): no pooling (strided convolutions in D, transposed
convolutions in G); batch norm in both, except on G's output layer and D's input layer; no hidden
fully connected layers; ReLU in G with a tanh output; LeakyReLU(0.2) in D. Weights are drawn from
N(0, 0.02), batch-norm scales from N(1, 0.02), biases are 0 (§4). Convolutions followed by batch
norm have no bias, and neither has G's output layer, as in pytorch/examples ``dcgan`` (whose
64x64x3 generator with ``nz=100, ngf=64`` has exactly 3,576,704 parameters).

``extra_layers`` adds that many 3x3 stride-1 convolutions (BN + ReLU in G, BN + LeakyReLU in D)
at G's last hidden resolution and D's first, as ``n_extra_layers`` in the DCGAN of Arjovsky et
al.'s WGAN code (``models/dcgan.py``); 0, the default, is Radford et al.'s network.

Supported images: ``(C, H, W)`` with ``H == W == s * 2**n``, ``s`` in {4, 7}, ``n >= 1``. G starts
from an ``s x s`` map of ``base_width * 2**(n-1)`` channels and halves the width as it doubles the
resolution; D mirrors it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.nets.capabilities import network_capabilities

LEAKY_SLOPE = 0.2


def dcgan_geometry(data_shape: Sequence[int]) -> tuple[int, int, int]:
    """``(channels, s, n)`` for an image shape ``(C, s * 2**n, s * 2**n)``; raises
    :class:`GanlabError` for any other shape."""
    shape = tuple(int(v) for v in data_shape)
    if len(shape) == 3 and shape[0] >= 1 and shape[1] == shape[2]:
        side = shape[1]
        for s in (4, 7):
            if side % s == 0:
                ratio = side // s
                if ratio >= 2 and ratio & (ratio - 1) == 0:
                    return shape[0], s, ratio.bit_length() - 1
    raise GanlabError(
        "dcgan needs square images of side 4·2^n or 7·2^n (n ≥ 1), e.g. 28, 32, 64; "
        f"got data_shape {shape}"
    )


def check_extra_layers(extra_layers: int) -> None:
    """``extra_layers`` must be an integer >= 0 (:class:`GanlabError` otherwise)."""
    if isinstance(extra_layers, bool) or not isinstance(extra_layers, int) or extra_layers < 0:
        raise GanlabError(f"dcgan needs extra_layers an integer >= 0; got {extra_layers!r}")


def extra_blocks(width: int, batch_norm: bool, activation: Callable[[], nn.Module], count: int
                 ) -> list[nn.Module]:
    """``count`` blocks of conv3x3 (stride 1, ``width`` channels) [+ BN] + ``activation()``."""
    layers: list[nn.Module] = []
    for _ in range(count):
        layers.append(nn.Conv2d(width, width, 3, 1, 1, bias=not batch_norm))
        layers += [nn.BatchNorm2d(width)] if batch_norm else []
        layers.append(activation())
    return layers


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al. §4: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(nn.Module):
    """``z (B, latent_dim) -> image (B, C, H, W)`` in [-1, 1]: a transposed convolution to an
    ``s x s`` map, ``n`` stride-2 transposed convolutions (BN + ReLU after all but the last), tanh.
    """

    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        base_width: int = 64,
        batch_norm: bool = True,
        extra_layers: int = 0,
    ) -> None:
        super().__init__()
        channels, s, n = dcgan_geometry(data_shape)
        check_extra_layers(extra_layers)
        if latent_dim < 1 or base_width < 1:
            raise GanlabError(
                f"dcgan needs latent_dim ≥ 1 and base_width ≥ 1; got {latent_dim}, {base_width}"
            )
        self.latent_dim = int(latent_dim)
        self.data_shape = (channels, s * 2**n, s * 2**n)
        width = base_width * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.latent_dim, width, s, 1, 0, bias=not batch_norm)
        ]
        layers += [nn.BatchNorm2d(width)] if batch_norm else []
        layers.append(nn.ReLU())
        for _ in range(n - 1):
            layers.append(nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=not batch_norm))
            width //= 2
            layers += [nn.BatchNorm2d(width)] if batch_norm else []
            layers.append(nn.ReLU())
        layers += extra_blocks(width, batch_norm, nn.ReLU, extra_layers)
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.init_weights()

    def init_weights(self) -> None:
        """DCGAN's initialisation (:func:`init_dcgan_weights`)."""
        init_dcgan_weights(self)

    def capabilities(self) -> frozenset[str]:
        """What this network offers to plugins: ``features`` (``features()``, ``head()``,
        ``feature_dim``) and ``batch_norm`` (it has batch-norm layers)."""
        return network_capabilities(self)

    def forward(self, z: Tensor) -> Tensor:
        """``(B, latent_dim) -> (B, C, H, W)``."""
        return self.net(z.reshape(z.shape[0], self.latent_dim, 1, 1))


class DCGANDiscriminator(nn.Module):
    """``image -> logit``: ``n`` stride-2 convolutions (LeakyReLU(0.2); BN on all but the first)
    down to an ``s x s`` map whose flattening is ``features``; ``head`` is an ``s x s``
    convolution to one logit."""

    def __init__(
        self,
        data_shape: Sequence[int],
        base_width: int = 64,
        batch_norm: bool = True,
        extra_layers: int = 0,
    ) -> None:
        super().__init__()
        channels, s, n = dcgan_geometry(data_shape)
        check_extra_layers(extra_layers)
        if base_width < 1:
            raise GanlabError(f"dcgan needs base_width ≥ 1; got {base_width}")
        self.data_shape = (channels, s * 2**n, s * 2**n)
        width = base_width
        layers: list[nn.Module] = [
            nn.Conv2d(channels, width, 4, 2, 1),
            nn.LeakyReLU(LEAKY_SLOPE),
            *extra_blocks(width, batch_norm, lambda: nn.LeakyReLU(LEAKY_SLOPE), extra_layers),
        ]
        for _ in range(n - 1):
            layers.append(nn.Conv2d(width, width * 2, 4, 2, 1, bias=not batch_norm))
            width *= 2
            layers += [nn.BatchNorm2d(width)] if batch_norm else []
            layers.append(nn.LeakyReLU(LEAKY_SLOPE))
        self.body = nn.Sequential(*layers)
        self.feature_shape = (width, s, s)
        self.feature_dim = width * s * s
        self.head_conv = nn.Conv2d(width, 1, s, 1, 0)
        self.init_weights()

    def features(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, feature_dim)``: the flattened ``s x s`` map."""
        return self.body(x).flatten(1)

    def head(self, f: Tensor) -> Tensor:
        """``(B, feature_dim) -> (B,)`` logits."""
        return self.head_conv(f.view(f.shape[0], *self.feature_shape)).flatten()

    def init_weights(self) -> None:
        """DCGAN's initialisation (:func:`init_dcgan_weights`)."""
        init_dcgan_weights(self)

    def capabilities(self) -> frozenset[str]:
        """What this network offers to plugins: ``features`` (``features()``, ``head()``,
        ``feature_dim``) and ``batch_norm`` (it has batch-norm layers)."""
        return network_capabilities(self)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B,)`` logits."""
        return self.head(self.features(x))
