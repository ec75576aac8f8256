"""Auxiliary classifier GAN (Odena, Olah & Shlens 2017, "Conditional Image Synthesis with
Auxiliary Classifier GANs", §3).

D sees ``x`` alone and has two heads on its features: the source logit and ``K`` class logits.
With ``L_S = E log P(S=real | x_real) + E log P(S=fake | x_fake)`` and
``L_C = E log P(C=c | x_real) + E log P(C=c | x_fake)``, D maximises ``L_S + L_C`` and G
maximises ``L_C - L_S``. In ganlab's convention (costs, halved expectations as in
``J_D = -½ E log D(x) - ½ E log(1 - D(G(z)))``):

    J_D = loss.d_loss + w · ½ (CE(real class logits, y) + CE(fake class logits, y_fake))
    J_G = loss.g_loss + w · ½ CE(fake class logits, y_fake)

where ``loss`` is the run's adversarial objective: with ``loss=non_saturating`` G's ``-L_S``
part is the non-saturating ``-½ E log D(G(z))`` (Odena et al.'s released code does the same);
with ``loss=minimax`` it is the paper's ``½ E log(1 - D(G(z)))``. ``w = weight`` (1 in the paper).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.conditioning.base import (
    ClassConditioning,
    TwoHeadDiscriminator,
    require_features,
    to_device_of,
)
from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.core.step import DStep, GStep


class AuxiliaryClassifierDiscriminator(TwoHeadDiscriminator):
    """D with a class head: ``outputs(x) = (head(φ(x)), classifier(φ(x)))``."""

    def __init__(self, net: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.feature_dim = require_features(net, "auxiliary")
        self.classifier = nn.Linear(self.feature_dim, int(num_classes))

    def aux_head(self) -> nn.Module:
        return self.classifier


def acgan_d_class_cost(real_class_logits: Tensor, real_labels: Tensor,
                       fake_class_logits: Tensor, fake_labels: Tensor) -> Tensor:
    """``-½ L_C = ½ (CE(real) + CE(fake))`` (Odena et al. 2017 §3), mean over the batch."""
    return 0.5 * (F.cross_entropy(real_class_logits, real_labels)
                  + F.cross_entropy(fake_class_logits, fake_labels))


def acgan_g_class_cost(fake_class_logits: Tensor, fake_labels: Tensor) -> Tensor:
    """G's part of ``-½ L_C``: ``½ CE(fake)``."""
    return 0.5 * F.cross_entropy(fake_class_logits, fake_labels)


class Auxiliary(ClassConditioning):
    """``conditioning=auxiliary`` (AC-GAN)."""

    name = "auxiliary"
    needs = frozenset({"data.labels", "discriminator.features"})

    def __init__(self, weight: float = 1.0, classifier: str | None = None) -> None:
        super().__init__(classifier)
        if not weight >= 0:
            raise GanlabError(f"conditioning=auxiliary: weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self._log: dict[str, Tensor] = {}

    def setup(self, setup: Setup) -> None:
        d = setup.players.discriminator
        setup.players.discriminator = to_device_of(AuxiliaryClassifierDiscriminator(d, self.k), d)

    def discriminate(self, disc: nn.Module, x: Tensor, condition: Tensor | None
                     ) -> tuple[Tensor, Tensor]:
        return disc.outputs(x)

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        assert step.real_aux is not None and step.fake_aux is not None
        assert step.real_condition is not None and step.fake_condition is not None
        term = acgan_d_class_cost(step.real_aux, step.real_condition,
                                  step.fake_aux, step.fake_condition)
        self._log["d_class_cost"] = term.detach()
        self._log["accuracy_real"] = (
            (step.real_aux.argmax(1) == step.real_condition).float().mean().detach()
        )
        return cost + self.weight * term

    def g_cost(self, cost: Tensor, step: GStep) -> Tensor:
        assert step.fake_aux is not None and step.fake_condition is not None
        term = acgan_g_class_cost(step.fake_aux, step.fake_condition)
        self._log["g_class_cost"] = term.detach()
        return cost + self.weight * term

    def log_values(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._log.items()}
