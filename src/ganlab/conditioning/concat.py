"""Conditional GAN by concatenation (Mirza & Osindero 2014, "Conditional Generative Adversarial
Nets"): the label ``y`` is fed to both players.

G's input is ``cat(z, one_hot(y))``: its first layer then adds a learned embedding of ``y``
(one-hot times the layer's weights) to its transform of ``z``. D's input is ``x`` with
``one_hot(y)`` appended: as ``K`` constant channels for images, as ``K`` features for vectors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor, nn

from ganlab.conditioning.base import (
    ClassConditioning,
    concat_condition,
    concat_shape,
    one_hot,
    to_device_of,
)

if TYPE_CHECKING:
    from ganlab.adapter.module import GANModule


class ConcatDiscriminator(nn.Module):
    """``D(x, y) = net(cat(x, one_hot(y)))``; ``net`` is built for the widened input."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.num_classes = int(num_classes)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``(B, *data_shape), (B,) -> (B,)`` logits."""
        return self.net(concat_condition(x, one_hot(y, self.num_classes)))


class Concat(ClassConditioning):
    """``conditioning=concat``."""

    name = "concat"
    conditions_discriminator = True

    def discriminator_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        return concat_shape(data_shape, self.k)

    def setup(self, module: GANModule) -> None:
        d = module.discriminator
        module.discriminator = to_device_of(ConcatDiscriminator(d, self.k), d)

    def discriminate(self, disc: nn.Module, x: Tensor, condition: Tensor | None
                     ) -> tuple[Tensor, None]:
        return disc(x, condition), None
