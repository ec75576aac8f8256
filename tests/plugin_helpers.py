"""Plugins outside a run: the players, setup and step data that hooks receive, built by hand."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganlab.core.capabilities import check
from ganlab.core.players import Players, Setup
from ganlab.core.plugin import Plugin, PluginList
from ganlab.core.step import DStep, GStep
from ganlab.families.gan import run_components
from ganlab.losses import NonSaturating


def players(generator: nn.Module | None = None, discriminator: nn.Module | None = None
            ) -> Players:
    """Players with the given networks (a 1-unit linear layer where none is given)."""
    return Players(generator if generator is not None else nn.Linear(1, 1),
                   discriminator if discriminator is not None else nn.Linear(1, 1))


def setup(plugin: Plugin, *, generator: nn.Module | None = None,
          discriminator: nn.Module | None = None, loss: Any = None, total_iterations: int = 0,
          optimizers: dict[str, Any] | None = None, latent_dim: int = 1,
          data_capabilities: tuple[str, ...] = ()) -> Setup:
    """Check ``plugin``'s capabilities against these parts (one-line error as in a run), then
    run its setup; returns the :class:`Setup` (its players as the plugin left them)."""
    loss = loss if loss is not None else NonSaturating()
    p = players(generator, discriminator)
    check(run_components(p, loss, [plugin], data_capabilities, {}))
    s = Setup(p, loss, optimizers or {"generator": torch.optim.SGD,
                                      "discriminator": torch.optim.SGD},
              total_iterations, (), lambda n, g: torch.randn(n, latent_dim, generator=g),
              latent_dim)
    plugin.setup(s)
    return s


def dstep(real_logits: Tensor, fake_logits: Tensor, real: Tensor | None = None,
          fake: Tensor | None = None, iteration: int = 0, *, players_: Players | None = None,
          loss: Any = None, plugins: list[Plugin] = (), total_iterations: int = 0) -> DStep:
    """A D step whose critic is the unconditional discriminator of ``players_``."""
    p = players_ if players_ is not None else players()
    chain = PluginList(list(plugins))
    empty = torch.zeros(0)
    return DStep(iteration, total_iterations, p, loss or NonSaturating(),
                 empty if real is None else real, empty if fake is None else fake,
                 real_logits, fake_logits, lambda x, c: p.discriminator(x),
                 lambda x, c: p.discriminator.features(x),
                 lambda x: chain.d_input(x, iteration))


def gstep(real: Tensor, fake: Tensor, fake_logits: Tensor, iteration: int = 0, *,
          players_: Players | None = None, loss: Any = None, plugins: list[Plugin] = (),
          optimizers: dict[str, Any] | None = None, total_iterations: int = 0) -> GStep:
    """A G step whose critic is the unconditional discriminator of ``players_``; ``d_input``
    runs ``plugins``' transforms."""
    p = players_ if players_ is not None else players()
    chain = PluginList(list(plugins))
    return GStep(iteration, total_iterations, p, loss or NonSaturating(), real, fake,
                 fake_logits, lambda x, c: p.discriminator(x),
                 lambda x, c: p.discriminator.features(x),
                 lambda x: chain.d_input(x, iteration), optimizers=optimizers)


def plugin(module: Any, name: str) -> Plugin:
    """The plugin called ``name`` of a built GANModule's family."""
    return next(p for p in module.family.plugins if p.name == name)
