"""The data a training step hands to plugin hooks (never the LightningModule itself).

``critic(x, condition)`` is D on an input with its condition (through the run's conditioning),
``features(x, condition)`` D's features there, and ``d_input(x)`` applies every D-input
transform of the run (instance noise, DiffAugment, ...): with them a penalty such as R1 or a
gradient penalty sees exactly the D that the adversarial cost sees, conditioned or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ganlab.core.players import Players

Critic = Callable[[Tensor, Any], Tensor]


@dataclass
class DStep:
    """One discriminator update: its inputs (``real``, ``fake``: D's inputs, every transform
    applied), conditions, outputs and the run's context."""

    iteration: int
    total_iterations: int
    players: Players
    loss: Any
    real: Tensor
    fake: Tensor
    real_logits: Tensor
    fake_logits: Tensor
    critic: Critic
    features: Critic
    d_input: Callable[[Tensor], Tensor]
    labels: Tensor | None = None
    real_condition: Any = None
    fake_condition: Any = None
    real_aux: Tensor | None = None
    fake_aux: Tensor | None = None
    optimizers: dict[str, Any] | None = None


@dataclass
class GStep:
    """One generator update: the iteration's last real minibatch (``real``, untransformed),
    D's input made from G's output (``fake``, transformed), G's input ``latent`` and D's
    outputs on ``fake``."""

    iteration: int
    total_iterations: int
    players: Players
    loss: Any
    real: Tensor
    fake: Tensor
    fake_logits: Tensor
    critic: Critic
    features: Critic
    d_input: Callable[[Tensor], Tensor]
    latent: Tensor | None = None
    labels: Tensor | None = None
    #: The condition of ``real`` for D, computed when asked (it may cost a forward pass).
    real_condition: Callable[[], Any] = lambda: None
    fake_condition: Any = None
    fake_aux: Tensor | None = None
    optimizers: dict[str, Any] | None = None
