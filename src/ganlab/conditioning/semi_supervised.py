"""Semi-supervised learning with a K+1-class discriminator (Salimans et al. 2016, "Improved
Techniques for Training GANs", §5).

D is a classifier with ``K`` class logits ``l_1..l_K`` and an implicit ``K+1``-th "fake" class
whose logit is fixed to 0 (§5: this removes the softmax's redundant degree of freedom). Then

    D(x) = P(real | x) = Z(x) / (Z(x) + 1),   Z(x) = Σ_k exp(l_k(x)),

so D's adversarial logit is ``log Z(x) = logsumexp_k l_k(x)`` and ``σ(log Z) = Z / (Z + 1)``:
the run's adversarial loss applies unchanged to it (``L_unsupervised``). On the labelled
examples D also minimises ``L_supervised = CE(l(x), y)`` over the ``K`` real classes (the
``K+1``-th has probability ``1/(Z+1)``, which the cross-entropy over ``K`` classes conditioned
on "real" ignores, as in the paper's released code). With ganlab's halved costs
(``loss.d_loss = ½ L_unsupervised`` for the cross-entropy losses):

    J_D = loss.d_loss + w · ½ L_supervised      (w = 1: the paper's L = L_sup + L_unsup)

G is trained with feature matching (``tricks=[feature_matching]``, the paper's choice for
semi-supervised learning). The labelled set is ``num_labelled / K`` examples of each class,
chosen once from the training split by the seed; they are stored in D's wrapper as buffers (in
the checkpoint) and all of them form the labelled minibatch of every D step (100 by default,
the paper's labelled batch). ``ssl_test_accuracy`` is D's class accuracy (argmax of
``l_1..l_K``, D in eval mode) on the dataset's official test split when it has one (MNIST), else
on the training images outside the labelled set (``mnist_offline``: 4,900 images that training
sees without labels, the transductive setting); :mod:`ganlab.metrics.ssl_accuracy` measures it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.conditioning.base import (
    Conditioning,
    drop_head,
    require_classes,
    require_features,
    to_device_of,
)
from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.core.step import DStep
from ganlab.data.images import official_test_split

#: Offset of the seed that chooses the labelled examples.
LABELLED_SEED_OFFSET = 424_242


def k_plus_one_logit(class_logits: Tensor) -> Tensor:
    """``log Z(x) = logsumexp_k l_k``: the logit of ``D(x) = Z / (Z + 1)``."""
    return torch.logsumexp(class_logits, dim=1)


def choose_labelled(labels: Tensor, per_class: int, num_classes: int, seed: int) -> Tensor:
    """Sorted indices of ``per_class`` examples of each class, chosen by ``seed``."""
    g = torch.Generator().manual_seed(seed + LABELLED_SEED_OFFSET)
    chosen = []
    for k in range(num_classes):
        idx = torch.nonzero(labels == k).flatten()
        if len(idx) < per_class:
            raise GanlabError(
                f"semi_supervised: class {k} has {len(idx)} examples, fewer than {per_class}"
            )
        chosen.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values


class KPlusOneDiscriminator(nn.Module):
    """D with ``K`` class logits on its features; ``forward(x) = logsumexp(l(x))``. Holds the
    labelled examples as buffers ``labelled_x`` (uint8) and ``labelled_y``."""

    def __init__(self, net: nn.Module, num_classes: int, labelled_x: Tensor,
                 labelled_y: Tensor) -> None:
        super().__init__()
        self.net = net
        self.feature_dim = require_features(net, "semi_supervised")
        self.classifier = nn.Linear(self.feature_dim, int(num_classes))
        self.register_buffer("labelled_x", labelled_x.clone())
        self.register_buffer("labelled_y", labelled_y.clone())

    def features(self, x: Tensor) -> Tensor:
        """D's features (what feature matching compares)."""
        return self.net.features(x)

    def class_logits(self, x: Tensor) -> Tensor:
        """``l_1..l_K``, ``(B, K)``."""
        return self.classifier(self.net.features(x))

    def outputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(log Z(x) (B,), class logits (B, K))``, through ``__call__`` (so forward hooks,
        e.g. of data-parallel strategies, see the call)."""
        return self(x, aux=True)

    def forward(self, x: Tensor, aux: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Adversarial logits ``log Z(x)`` ``(B,)``; with ``aux``, also the class logits."""
        logits = self.class_logits(x)
        return (k_plus_one_logit(logits), logits) if aux else k_plus_one_logit(logits)

    def labelled_batch(self) -> tuple[Tensor, Tensor]:
        """The labelled examples in [-1, 1] and their labels."""
        return self.labelled_x.float() / 127.5 - 1, self.labelled_y


class SemiSupervised(Conditioning):
    """``conditioning=semi_supervised``.

    Args:
        num_labelled: labelled examples, ``num_labelled / K`` per class.
        weight: ``w`` of the supervised cost.
    """

    name = "semi_supervised"
    provides = frozenset({"discriminator.classes"})
    needs = frozenset({"data.labels", "data.images", "discriminator.features"})

    def __init__(self, num_labelled: int = 100, weight: float = 1.0) -> None:
        if num_labelled < 1 or not weight >= 0:
            raise GanlabError("semi_supervised: num_labelled must be >= 1 and weight >= 0")
        self.num_labelled = int(num_labelled)
        self.weight = float(weight)
        self._labelled: tuple[Tensor, Tensor] | None = None
        self._held_out: tuple[Tensor, Tensor] | None = None
        self.test_source = ""
        self._log: dict[str, Tensor] = {}

    def bind(self, datamodule: Any) -> None:
        k = require_classes(self.name, datamodule)
        if not hasattr(datamodule, "images"):
            raise GanlabError(
                f"conditioning=semi_supervised needs an image dataset with stored labels; "
                f"got {type(datamodule).__name__}"
            )
        if self.num_labelled % k:
            raise GanlabError(
                f"semi_supervised: num_labelled ({self.num_labelled}) must be a multiple of "
                f"the number of classes ({k})"
            )
        self.num_classes = k
        images, labels = datamodule.images, datamodule.labels
        idx = choose_labelled(labels, self.num_labelled // k, k, int(datamodule.seed))
        self._labelled = (images[idx], labels[idx])
        test = official_test_split(datamodule)
        if test is not None:
            self._held_out, self.test_source = test, "the official test split"
        else:
            rest = torch.ones(len(labels), dtype=torch.bool)
            rest[idx] = False
            self._held_out = (images[rest], labels[rest])
            self.test_source = "the training images outside the labelled set"

    @property
    def held_out(self) -> tuple[Tensor, Tensor]:
        """The images (uint8) and labels D's class accuracy is measured on."""
        if self._held_out is None:
            raise GanlabError("conditioning=semi_supervised: bind() it to the data first")
        return self._held_out

    def setup(self, setup: Setup) -> None:
        if self._labelled is None or self.num_classes is None:
            raise GanlabError("conditioning=semi_supervised: bind() it to the data first")
        d = setup.players.discriminator
        setup.players.discriminator = to_device_of(
            KPlusOneDiscriminator(drop_head(d), self.num_classes, *self._labelled), d
        )

    def discriminate(self, disc: nn.Module, x: Tensor, condition: Tensor | None
                     ) -> tuple[Tensor, Tensor]:
        return disc.outputs(x)

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        disc = step.players.discriminator
        x, y = disc.labelled_batch()
        x = step.d_input(x)
        _, logits = disc.outputs(x)
        supervised = F.cross_entropy(logits, y)
        self._log["supervised_cost"] = supervised.detach()
        self._log["labelled_accuracy"] = (logits.argmax(1) == y).float().mean().detach()
        return cost + self.weight * 0.5 * supervised

    def log_values(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._log.items()}
