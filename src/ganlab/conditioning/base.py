"""The conditioning interface: what G and D receive besides ``z`` and ``x``, and its costs.

A *conditioning* decides, for one run:

- the code appended to ``z`` (:meth:`Conditioning.sample_code`): G's input is ``cat(z, code)``,
  drawn from the module's noise generator right after ``z`` (so a resumed run draws the same
  codes, and an unconditional run, which draws no code, the same ``z`` as before);
- the condition D receives with a fake sample (:meth:`~Conditioning.fake_condition`, from G's
  input) and with a real one (:meth:`~Conditioning.real_condition`, from the data's labels);
- how D consumes it (:meth:`~Conditioning.discriminate` returns the adversarial logits and an
  optional auxiliary output, e.g. class logits or InfoGAN's Q);
- the extra cost terms of each player (:meth:`~Conditioning.d_cost`, :meth:`~Conditioning.g_cost`).

A conditioning is a plugin (:class:`ganlab.core.plugin.Plugin`, stage ``CONDITION``) with these
extra hooks; the training step calls them and never branches on a conditioning's name. The
default, :class:`Unconditional`, draws nothing and changes nothing. New weights (embeddings,
heads, an encoder) live in wrapper ``nn.Module``\\ s that replace the players in
:meth:`~Conditioning.setup`, so they are optimised with that player and saved in its
``state_dict``. Its evaluation numbers are metrics (:mod:`ganlab.metrics`) that ask for the
capabilities it provides (``generator.classes``, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.core.players import Players, Setup
from ganlab.core.plugin import Plugin, Stage
from ganlab.core.seeds import SAMPLE_SEED


class Conditioning(Plugin):
    """Base class and unconditional default: every hook is neutral.

    Kinds whose samples can be requested per class provide ``generator.classes`` (class grids,
    per-class accuracy, intra-class FID).
    """

    name: ClassVar[str] = "none"
    kind = "conditioning"
    stage = Stage.CONDITION
    #: Number of classes, set by :meth:`bind` for the kinds that use labels.
    num_classes: int | None = None

    def bind(self, datamodule: Any) -> None:
        """Read what the data offers (e.g. its number of classes); called before the nets
        are built."""

    @property
    def code_dim(self) -> int:
        """Columns appended to ``z`` in G's input."""
        return 0

    def setup(self, setup: Setup) -> None:
        """Wrap ``setup.players.generator`` / ``setup.players.discriminator``."""

    def sample_code(self, n: int, generator: torch.Generator) -> Tensor | None:
        """``n`` codes appended to ``z``, drawn from ``generator``; ``None``: no code."""
        return None

    def fake_condition(self, z: Tensor, code: Tensor) -> Tensor | None:
        """What D receives with ``G(cat(z, code))``."""
        return None

    def real_condition(self, real: Tensor, labels: Tensor | None, players: Players
                       ) -> Tensor | None:
        """What D receives with the real minibatch ``real`` (labels: its class labels)."""
        return None

    def discriminate(self, disc: nn.Module, x: Tensor, condition: Tensor | None
                     ) -> tuple[Tensor, Tensor | None]:
        """``(logits (B,), auxiliary output or None)`` of D on ``x`` given ``condition``."""
        return disc(x), None

    def features(self, disc: nn.Module, x: Tensor, condition: Tensor | None) -> Tensor:
        """D's features of ``x`` given ``condition`` (what feature matching compares)."""
        return disc.features(x)

    def class_code(self, labels: Tensor) -> Tensor:
        """The code that asks G for the classes ``labels`` (class-conditional kinds only)."""
        raise GanlabError(f"conditioning '{self.name}' cannot generate a requested class")

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """Extra image grids of the generator: ``name -> (images in [-1, 1], images per row)``
        (saved as ``samples/<name>_<iteration>.png`` and logged as ``samples/<name>``);
        ``sampler`` draws from the evaluated generator (``sample_prior``, ``generate_from``,
        ``device``)."""
        return {}

    def tags(self) -> list[str]:
        """W&B tags."""
        return [] if self.name == "none" else [f"conditioning={self.name}"]


class Unconditional(Conditioning):
    """The plain GAN: G(z), D(x)."""


def require_classes(name: str, datamodule: Any) -> int:
    """The number of classes of ``datamodule``; one clear line when it has none."""
    k = getattr(datamodule, "num_classes", None)
    if not k or k < 2:
        raise GanlabError(
            f"conditioning={name} needs labelled data with at least 2 classes; "
            f"data {type(datamodule).__name__} has num_classes={k}"
        )
    return int(k)


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """float one-hot rows ``(B, K)`` of integer labels ``(B,)``."""
    return F.one_hot(labels.long(), num_classes).to(torch.float32)


def uniform_labels(n: int, num_classes: int, generator: torch.Generator) -> Tensor:
    """``n`` labels uniform over ``0..K-1`` from ``generator`` (on its device)."""
    return torch.randint(num_classes, (n,), generator=generator, device=generator.device)


def concat_condition(x: Tensor, onehot: Tensor) -> Tensor:
    """``x`` with ``y`` appended: as ``K`` constant channels for images ``(B, C, H, W)``, as ``K``
    features for vectors ``(B, d)`` (Mirza & Osindero 2014: y is fed to D's input)."""
    if x.dim() == 4:
        b, _, h, w = x.shape
        return torch.cat([x, onehot.to(x.dtype)[:, :, None, None].expand(b, -1, h, w)], 1)
    return torch.cat([x.flatten(1), onehot.to(x.dtype)], 1)


def concat_shape(data_shape: Sequence[int], extra: int) -> tuple[int, ...]:
    """The shape of :func:`concat_condition`'s output for one sample."""
    shape = tuple(int(s) for s in data_shape)
    if len(shape) == 3:
        return (shape[0] + extra, shape[1], shape[2])
    return (int(torch.Size(shape).numel()) + extra,)


def require_features(disc: nn.Module, name: str) -> int:
    """D's feature size; one line when D has no ``features()``/``head()``."""
    if not all(hasattr(disc, a) for a in ("features", "head", "feature_dim")):
        raise GanlabError(
            f"conditioning={name} needs a discriminator with features(), head() and "
            f"feature_dim (mlp, dcgan); got {type(disc).__name__}"
        )
    return int(disc.feature_dim)


class TwoHeadDiscriminator(nn.Module):
    """D with a second head on its features: ``outputs(x) = (head(φ(x)), aux_head(φ(x)))``
    (AC-GAN's class head, InfoGAN's Q). Subclasses set ``net`` and their second head, and
    return it from :meth:`aux_head`."""

    net: nn.Module
    feature_dim: int

    def aux_head(self) -> nn.Module:
        """The second head, applied to ``φ(x)``."""
        raise NotImplementedError

    def features(self, x: Tensor) -> Tensor:
        """``φ(x)``, ``(B, feature_dim)``."""
        return self.net.features(x)

    def head(self, f: Tensor) -> Tensor:
        """Adversarial logits ``(B,)`` from features."""
        return self.net.head(f)

    def outputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(adversarial logits (B,), the second head's outputs)``, through ``__call__`` (so
        forward hooks, e.g. of data-parallel strategies, see the call)."""
        return self(x, aux=True)

    def forward(self, x: Tensor, aux: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Adversarial logits ``(B,)``; with ``aux``, also the second head's outputs."""
        f = self.net.features(x)
        return (self.net.head(f), self.aux_head()(f)) if aux else self.net.head(f)


def drop_head(net: nn.Module) -> nn.Module:
    """``net`` without the submodules that ``net.features`` does not use (its logit head), so
    they are neither optimised nor saved; returns ``net``."""
    params = dict(net.named_parameters())
    shape = tuple(getattr(net, "data_shape", ()))
    if not params or not shape:
        return net
    with evaluating(net):
        f = net.features(torch.zeros(2, *shape, device=next(iter(params.values())).device))
        grads = torch.autograd.grad(f.sum(), list(params.values()), allow_unused=True)
    unused = {name for name, grad in zip(params, grads, strict=True) if grad is None}
    for name, sub in list(net.named_children()):
        names = [f"{name}.{p}" for p, _ in sub.named_parameters()]
        if names and all(n in unused for n in names):
            setattr(net, name, None)
    return net


def to_device_of(new: nn.Module, old: nn.Module) -> nn.Module:
    """``new`` on the device of ``old``'s first parameter."""
    first = next(old.parameters(), None)
    return new if first is None else new.to(first.device)


class ClassConditioning(Conditioning):
    """Base of the kinds conditioned on a class label ``y`` (concat, projection, auxiliary).

    G's code is ``one_hot(y)`` with ``y`` uniform over the ``K`` classes of the data (drawn from
    the noise generator); D receives ``y`` (the fake's requested class, or the real label).
    """

    provides = frozenset({"generator.classes", "generator.code"})
    needs = frozenset({"data.labels"})
    #: Samples per class (columns) of the class grid.
    grid_columns: ClassVar[int] = 10

    def __init__(self, classifier: str | None = None) -> None:
        """``classifier``: file of the lab's classifier (``ganlab-train-classifier``) judging
        generated images (the class metrics of :mod:`ganlab.metrics.class_metrics`); when it
        does not exist, those metrics are skipped with a note. ``None``: no classifier.
        Gaussian mixtures are judged by their nearest mode."""
        self.classifier = classifier

    def bind(self, datamodule: Any) -> None:
        self.num_classes = require_classes(self.name, datamodule)

    @property
    def k(self) -> int:
        if self.num_classes is None:
            raise GanlabError(f"conditioning={self.name}: bind() it to the data first")
        return self.num_classes

    @property
    def code_dim(self) -> int:
        return self.k

    def sample_code(self, n: int, generator: torch.Generator) -> Tensor:
        return one_hot(uniform_labels(n, self.k, generator), self.k)

    def fake_condition(self, z: Tensor, code: Tensor) -> Tensor:
        return code.argmax(1)

    def real_condition(self, real: Tensor, labels: Tensor | None, players: Players) -> Tensor:
        if labels is None:
            raise GanlabError(f"conditioning={self.name} needs the labels of the real data")
        return labels.to(real.device).long()

    def class_code(self, labels: Tensor) -> Tensor:
        return one_hot(labels, self.k)

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """Image data: the class grid, one row per class, the same ``z`` down each column."""
        if len(tuple(datamodule.data_shape)) != 3:
            return {}
        cols = self.grid_columns
        gen = torch.Generator(device=sampler.device).manual_seed(SAMPLE_SEED)
        z = sampler.sample_prior(cols, gen).repeat(self.k, 1)
        labels = torch.arange(self.k, device=sampler.device).repeat_interleave(cols)
        latent = torch.cat([z, self.class_code(labels).to(z.dtype)], 1)
        return {"classes": (sampler.generate_from(latent), cols)}
