"""BiGAN / ALI (Donahue, Krähenbühl & Darrell 2017, "Adversarial Feature Learning"; Dumoulin et
al. 2017, "Adversarially Learned Inference").

An encoder ``E: x -> z`` is trained with G; D judges pairs: ``(x, E(x))`` for real data and
``(G(z), z)`` for samples. With the run's objective ``loss`` (its ``d_loss(real, fake)``):

    J_D   = loss.d_loss(D(x, E(x)), D(G(z), z))
    J_G,E = loss.d_loss(D(G(z), z), D(x, E(x)))

i.e. G and E minimise D's cost with the roles of the two kinds of pairs swapped ("inverting the
labels", Donahue et al. §3.4; for the cross-entropy losses this is the non-saturating form on
both pairs), which replaces the run's generator cost. ``E`` is deterministic (as in BiGAN): a
network of D's architecture (fresh weights) with a linear layer to ``latent_dim`` outputs. It
lives in G's wrapper, so G's optimizer trains it and G's ``state_dict`` saves it. D reads ``x``
through its own features ``φ(x)`` and ``z`` through a small MLP, then a joint MLP gives the
logit (D's own head is dropped). Reconstructions ``G(E(x))`` are drawn
(``samples/reconstructions_*.png``: rows of real images alternate with their reconstructions)
and ``reconstruction_mse`` is reported (:mod:`ganlab.metrics.reconstruction`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.conditioning.base import (
    Conditioning,
    drop_head,
    require_features,
    to_device_of,
)
from ganlab.core.players import Players, Setup
from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.core.step import GStep


class Encoder(nn.Module):
    """``E(x) = Linear(φ(x))``: ``(B, *data_shape) -> (B, latent_dim)``."""

    def __init__(self, body: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.body = body
        self.out = nn.Linear(require_features(body, "bigan"), int(latent_dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.body.features(x))


class BiGANGenerator(nn.Module):
    """G with its encoder: ``forward(z) = net(z)``, ``encoder(x)``, ``reconstruct(x)``."""

    def __init__(self, net: nn.Module, encoder: Encoder) -> None:
        super().__init__()
        self.net = net
        self.encoder = encoder
        for attr in ("latent_dim", "data_shape"):
            if hasattr(net, attr):
                setattr(self, attr, getattr(net, attr))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)

    def reconstruct(self, x: Tensor) -> Tensor:
        """``G(E(x))``."""
        return self.net(self.encoder(x))


class BiGANDiscriminator(nn.Module):
    """``D(x, z) = joint(cat(φ(x), mlp(z)))``."""

    def __init__(self, net: nn.Module, latent_dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = net
        width = require_features(net, "bigan")
        self.z_path = nn.Sequential(nn.Linear(int(latent_dim), hidden), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(
            nn.Linear(width + hidden, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)
        )

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        """``(B, *data_shape), (B, latent_dim) -> (B,)`` logits."""
        return self.joint(torch.cat([self.net.features(x), self.z_path(z)], 1)).squeeze(1)


def fresh_copy(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with newly drawn weights (a net with its own initialisation, such as
    DCGAN's N(0, 0.02), declares it as ``init_weights()``)."""
    new = copy.deepcopy(net)
    for m in new.modules():
        if hasattr(m, "reset_parameters") and m is not new:
            m.reset_parameters()
    init = getattr(new, "init_weights", None)
    if callable(init):
        init()
    return new


def bigan_d_cost(loss: Any, real_pair_logits: Tensor, fake_pair_logits: Tensor) -> Tensor:
    """``J_D = loss.d_loss(D(x, E(x)), D(G(z), z))``."""
    return loss.d_loss(real_pair_logits, fake_pair_logits)


def bigan_g_cost(loss: Any, real_pair_logits: Tensor, fake_pair_logits: Tensor) -> Tensor:
    """``J_{G,E} = loss.d_loss(D(G(z), z), D(x, E(x)))``: the pairs' roles swapped."""
    return loss.d_loss(fake_pair_logits, real_pair_logits)


class BiGAN(Conditioning):
    """``conditioning=bigan``.

    Args:
        hidden: width of D's ``z`` path and joint layers.
        num_reconstructions: real images shown (with their reconstructions) in the picture.
    """

    name = "bigan"
    provides = frozenset({"generator.objective", "model.reconstruct", "discriminator.condition"})
    needs = frozenset({"discriminator.features"})

    def __init__(self, hidden: int = 128, num_reconstructions: int = 40) -> None:
        self.hidden = int(hidden)
        self.num_reconstructions = int(num_reconstructions)

    def setup(self, setup: Setup) -> None:
        players = setup.players
        d, g = players.discriminator, players.generator
        encoder = Encoder(drop_head(fresh_copy(d)), setup.latent_dim)
        players.generator = to_device_of(BiGANGenerator(g, encoder), g)
        players.discriminator = to_device_of(
            BiGANDiscriminator(drop_head(d), setup.latent_dim, self.hidden), d
        )

    def fake_condition(self, z: Tensor, code: Tensor) -> Tensor:
        return z

    def real_condition(self, real: Tensor, labels: Tensor | None, players: Players) -> Tensor:
        return players.generator.encoder(real)

    def discriminate(self, disc: nn.Module, x: Tensor, condition: Tensor | None
                     ) -> tuple[Tensor, None]:
        return disc(x, condition), None

    def g_objective(self, step: GStep) -> Tensor:
        real_in = step.d_input(step.real)
        players = step.players
        real_logits = players.discriminator(real_in, players.generator.encoder(step.real))
        return bigan_g_cost(step.loss, real_logits, step.fake_logits)

    def reconstruct(self, generator: nn.Module, x: Tensor) -> Tensor:
        """``G(E(x))`` of ``generator`` (the evaluated one: its encoder is averaged with it)."""
        return generator.reconstruct(x)

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """Image data: rows of 10 real images, each followed by the row of their
        reconstructions."""
        if len(tuple(datamodule.data_shape)) != 3:
            return {}
        cols = 10
        rows = max(self.num_reconstructions // cols, 1)
        real = datamodule.sample_n(rows * cols, seed=RECONSTRUCTION_SEED).to(sampler.device)
        rec = sampler.reconstruct(real)
        pairs = torch.stack([real.view(rows, cols, *real.shape[1:]),
                             rec.view(rows, cols, *rec.shape[1:])], 1)
        return {"reconstructions": (pairs.reshape(-1, *real.shape[1:]), cols)}
