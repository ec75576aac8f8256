"""Packing (PacGAN: Lin, Khetan, Fanti & Oh 2018, "PacGAN: The power of two samples in generative
adversarial networks", §3).

D judges *packs* of ``m`` samples instead of single ones: the packed discriminator
``D_m(x_1, …, x_m)`` is an ordinary D whose input has ``m`` times the channels (images) or
features (vectors): the ``m`` samples concatenated along that axis, one logit per pack. A pack
holds only real or only generated samples, each an independent draw: here, ``m`` consecutive
rows of the real minibatch or of the fake one (the GAN step calls D on each separately; rows of
a minibatch are independent draws). A minibatch of ``B`` samples makes ``B / m`` packs, so the
costs average over packs; the paper's D sees as many packs as the unpacked one sees samples,
which is ``train.batch_size = m · B`` here.

D's network is built for the packed shape (:meth:`Packing.discriminator_shape`: the first
axis times ``m``), so the paper's only architectural change, the wider first layer, holds for
every D of the lab (MLP, DCGAN, ResNet). Conditioning kinds judge each sample with its own
condition and the input-gradient penalty of WGAN-GP interpolates single samples, so neither
is combined with packing. R1/R2 take ``E ||∇_{x_i} D_m||²`` over the samples ``x_i`` (each
sample's share of its pack's gradient).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.tricks.base import Stage, Trick


def pack(x: Tensor, m: int) -> Tensor:
    """``(n, c, *rest) -> (n / m, m·c, *rest)``: rows ``m·j … m·j + m - 1`` concatenated along
    the first axis of a sample (channels or features) make pack ``j``."""
    n = x.shape[0]
    if n % m:
        raise GanlabError(f"trick 'packing' (m={m}) needs minibatches of a multiple of {m} "
                          f"samples; got {n} (set train.batch_size)")
    return x.reshape(n // m, m * x.shape[1], *x.shape[2:])


class PackedDiscriminator(nn.Module):
    """``D_m``: packs its input (:func:`pack`) and runs ``discriminator``, which was built for
    the packed shape; ``(n, *data_shape) -> (n / m,)`` logits."""

    def __init__(self, discriminator: nn.Module, m: int) -> None:
        super().__init__()
        self.body = discriminator
        self.samples_per_logit = int(m)
        if hasattr(discriminator, "feature_dim"):
            self.feature_dim = discriminator.feature_dim

    def features(self, x: Tensor) -> Tensor:
        """The body's features of each pack: ``(n, ...) -> (n / m, feature_dim)``."""
        return self.body.features(pack(x, self.samples_per_logit))

    def head(self, f: Tensor) -> Tensor:
        """The body's logits of pack features."""
        return self.body.head(f)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(pack(x, self.samples_per_logit))


class Packing(Trick):
    """``tricks=[packing]``: D judges packs of ``m`` samples (PacGAN2: ``m = 2``, PacGAN4: 4)."""

    name = "packing"
    stage = Stage.PACK
    excludes = frozenset({"generator.code", "discriminator.condition", "discriminator.classes",
                          "discriminator.gradient_penalty"})

    def __init__(self, m: int = 2) -> None:
        if isinstance(m, bool) or int(m) != m or m < 1:
            raise GanlabError(f"packing: m must be a positive integer; got {m}")
        self.m = int(m)

    def discriminator_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``(c, *rest) -> (m·c, *rest)``."""
        return (self.m * data_shape[0], *data_shape[1:])

    def setup(self, setup: Setup) -> None:
        setup.players.discriminator = PackedDiscriminator(setup.players.discriminator, self.m)
