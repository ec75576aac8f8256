"""Projection discriminator (Miyato & Koyama 2018, "cGANs with Projection Discriminator", eq. 3):

    D(x, y) = ψ(φ(x)) + embed(y)ᵀ φ(x)

with ``φ`` D's features, ``ψ`` D's head and ``embed(y) = Vᵀ one_hot(y)`` a learned class
embedding of the size of ``φ``. G is conditioned as in ``concat`` (``cat(z, one_hot(y))``).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.conditioning.base import ClassConditioning, require_features, to_device_of
from ganlab.core.players import Setup


class ProjectionDiscriminator(nn.Module):
    """``D(x, y) = head(φ(x)) + <embed(y), φ(x)>`` with ``φ = net.features``."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.feature_dim = require_features(net, "projection")
        self.embed = nn.Embedding(int(num_classes), self.feature_dim)
        nn.init.xavier_uniform_(self.embed.weight)

    def features(self, x: Tensor) -> Tensor:
        """``φ(x)``, ``(B, feature_dim)``."""
        return self.net.features(x)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``(B, *data_shape), (B,) -> (B,)`` logits."""
        phi = self.net.features(x)
        return self.net.head(phi) + (self.embed(y) * phi).sum(1)


class Projection(ClassConditioning):
    """``conditioning=projection``."""

    name = "projection"
    provides = frozenset({"generator.classes", "generator.code", "discriminator.condition"})
    needs = frozenset({"data.labels", "discriminator.features"})

    def setup(self, setup: Setup) -> None:
        d = setup.players.discriminator
        setup.players.discriminator = to_device_of(ProjectionDiscriminator(d, self.k), d)

    def discriminate(self, disc: nn.Module, x: Tensor, condition: Tensor | None
                     ) -> tuple[Tensor, None]:
        return disc(x, condition), None
