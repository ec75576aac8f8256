"""Conditional GAN by concatenation (Mirza & Osindero 2014, "Conditional Generative Adversarial
Nets"): the label ``y`` is fed to both players.

G's input is ``cat(z, one_hot(y))``: its first layer then adds a learned embedding of ``y``
(one-hot times the layer's weights) to its transform of ``z``. D's input is ``x`` with
``one_hot(y)`` appended: as ``K`` constant channels for images, as ``K`` features for vectors.
"""

from __future__ import annotations

from torch import Tensor, nn

from ganlab.conditioning.base import (
    ClassConditioning,
    concat_condition,
    concat_shape,
    one_hot,
    to_device_of,
)
from ganlab.core.players import Setup


class ConcatDiscriminator(nn.Module):
    """``D(x, y) = net(cat(x, one_hot(y)))``; ``net`` is built for the widened input."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.num_classes = int(num_classes)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``(B, *data_shape), (B,) -> (B,)`` logits."""
        return self.net(concat_condition(x, one_hot(y, self.num_classes)))

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        """The features of ``net`` on the widened input (when ``net`` has them)."""
        return self.net.features(concat_condition(x, one_hot(y, self.num_classes)))


class Concat(ClassConditioning):
    """``conditioning=concat``."""

    name = "concat"
    provides = frozenset({"generator.classes", "generator.code", "discriminator.condition"})

    def discriminator_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        return concat_shape(data_shape, self.k)

    def setup(self, setup: Setup) -> None:
        d = setup.players.discriminator
        setup.players.discriminator = to_device_of(ConcatDiscriminator(d, self.k), d)

    def discriminate(self, disc: nn.Module, x: Tensor, condition: Tensor | None
                     ) -> tuple[Tensor, None]:
        return disc(x, condition), None

    def features(self, disc: nn.Module, x: Tensor, condition: Tensor | None) -> Tensor:
        return disc.features(x, condition)
