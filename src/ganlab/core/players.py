"""The networks of a run by role, and what a plugin's setup may change about them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]


@dataclass
class Players:
    """The players of an adversarial game: ``generator`` and ``discriminator``, plus ``extra``
    networks that are saved with the run but not optimised as players (e.g. the moving
    average of G). ``evaluated`` names the network that draws samples for metrics and
    pictures (``generator`` unless a plugin keeps another one)."""

    generator: nn.Module
    discriminator: nn.Module
    extra: dict[str, nn.Module] = field(default_factory=dict)
    evaluated: str = "generator"

    def get(self, role: str) -> nn.Module:
        """The network of ``role`` (``generator``, ``discriminator`` or an extra's name)."""
        if role in ("generator", "discriminator"):
            return getattr(self, role)
        return self.extra[role]

    @property
    def eval_generator(self) -> nn.Module:
        """The network that draws the samples that are measured and shown."""
        return self.get(self.evaluated)

    def modules(self) -> dict[str, nn.Module]:
        """Every network by role, in a stable order."""
        return {"generator": self.generator, "discriminator": self.discriminator, **self.extra}


@dataclass
class Setup:
    """What :meth:`ganlab.core.plugin.Plugin.setup` receives: the players (which it may wrap
    or replace), the loss, the optimizer factories of each player (which it may change), the
    run's length, the data's shape and a sampler of G's inputs."""

    players: Players
    loss: Any
    optimizers: dict[str, OptimizerFactory]
    total_iterations: int
    data_shape: tuple[int, ...]
    sample_latent: Callable[[int, torch.Generator], Tensor]
    latent_dim: int = 0
    #: The run's seed (for plugins whose own random numbers follow it).
    seed: int = 0
