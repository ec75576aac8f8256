"""The plugin interface: tricks, conditioning kinds and regularisers are all plugins.

A plugin is a small object whose hooks the training step calls; the step never branches on a
plugin's name. Every hook has a neutral default, so a plugin overrides only what it changes.
A plugin declares

- ``stage``: when its :meth:`Plugin.setup` runs and where its hooks run relative to the
  others' (:class:`Stage`; within a stage, the order of ``tricks=[a, b]``);
- ``provides``, ``needs``, ``excludes``: capabilities (:mod:`ganlab.core.capabilities`),
  checked once before any setup, so a mismatch is one line naming both sides.

Hooks receive :class:`~ganlab.core.players.Setup` (once) and
:class:`~ganlab.core.step.DStep` / :class:`~ganlab.core.step.GStep` (every update), never the
LightningModule. What :meth:`Plugin.state_dict` returns is saved in every checkpoint and
restored before training continues, so every plugin resumes bit-exactly. A plugin holds no
``nn.Parameter`` of its own: one that needs learned weights adds them to a network in
:meth:`Plugin.setup`, so they are optimised and checkpointed with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import IntEnum
from typing import Any, ClassVar

from torch import Tensor

from ganlab.core.players import Setup
from ganlab.core.step import DStep, GStep


class Stage(IntEnum):
    """When a plugin's setup runs (and its hooks, within each hook): lowest first."""

    #: Changes a network's architecture (minibatch discrimination, virtual batch norm).
    NETWORK = 10
    #: Changes what D reads as one input, around the final architecture (packing).
    PACK = 15
    #: Wraps the players for a condition (conditioning kinds).
    CONDITION = 20
    #: Reparametrises every layer the earlier stages made (spectral normalization).
    REPARAMETRISE = 30
    #: Changes the optimizers (TTUR).
    OPTIMIZER = 40
    #: Cost terms, input transforms, schedules: the default.
    COST = 50
    #: Copies a player once every other plugin has changed it (EMA of G).
    AVERAGE = 90


class Plugin:
    """Base class of every plugin; all hooks are neutral."""

    name: ClassVar[str] = "plugin"
    #: How messages and tags call it: ``trick``, ``conditioning`` or ``regulariser``.
    kind: ClassVar[str] = "trick"
    stage: ClassVar[int] = Stage.COST
    provides: frozenset[str] = frozenset()
    needs: frozenset[str] = frozenset()
    excludes: frozenset[str] = frozenset()

    @property
    def who(self) -> str:
        """How one-line errors name this plugin, e.g. ``trick 'r1'``."""
        return f"{self.kind} '{self.name}'"

    def discriminator_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The input shape D's network is built for, given the shape the earlier plugins
        (in stage order) make it read (``data_shape`` unless this plugin changes it)."""
        return data_shape

    def setup(self, setup: Setup) -> None:
        """Called once the networks are built, in stage order (may wrap or modify them)."""

    def d_input(self, x: Tensor, iteration: int) -> Tensor:
        """Transform every input of D, real or fake, in both D and G steps."""
        return x

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        """D's cost, possibly with extra terms."""
        return cost

    def g_objective(self, step: GStep) -> Tensor | None:
        """G's adversarial cost in place of the loss's (a plugin that returns one must provide
        ``generator.objective``); ``None``: the loss's."""
        return None

    def g_cost(self, cost: Tensor, step: GStep) -> Tensor:
        """G's cost, possibly with extra terms."""
        return cost

    def after_d_step(self, step: DStep) -> None:
        """Called after each discriminator optimizer step."""

    def after_g_step(self, step: GStep) -> None:
        """Called after each generator optimizer step (once per iteration)."""

    def log_values(self) -> dict[str, float]:
        """Scalars to log (e.g. the current noise level), without a prefix."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State saved in the checkpoint (restored before training continues)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def tags(self) -> list[str]:
        """W&B tags of this plugin."""
        return [f"{self.kind}={self.name}"]


class PluginList:
    """The plugins of a run in stage order (a stable sort: the given order within a stage)."""

    def __init__(self, plugins: Iterable[Plugin]) -> None:
        self.items = sorted(plugins, key=lambda p: int(p.stage))

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def discriminator_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        for plugin in self.items:
            data_shape = plugin.discriminator_shape(data_shape)
        return data_shape

    def setup(self, setup: Setup) -> None:
        for plugin in self.items:
            plugin.setup(setup)

    def d_input(self, x: Tensor, iteration: int) -> Tensor:
        for plugin in self.items:
            x = plugin.d_input(x, iteration)
        return x

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        for plugin in self.items:
            cost = plugin.d_cost(cost, step)
        return cost

    def g_objective(self, step: GStep) -> Tensor | None:
        for plugin in self.items:
            cost = plugin.g_objective(step)
            if cost is not None:
                return cost
        return None

    def g_cost(self, cost: Tensor, step: GStep) -> Tensor:
        for plugin in self.items:
            cost = plugin.g_cost(cost, step)
        return cost

    def after_d_step(self, step: DStep) -> None:
        for plugin in self.items:
            plugin.after_d_step(step)

    def after_g_step(self, step: GStep) -> None:
        for plugin in self.items:
            plugin.after_g_step(step)

    def log_values(self) -> dict[str, float]:
        """Every plugin's scalars, as ``<name>/<key>``."""
        return {f"{p.name}/{k}": v for p in self.items for k, v in p.log_values().items()}

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {p.name: p.state_dict() for p in self.items}

    def load_state_dict(self, state: dict[str, dict[str, Any]]) -> None:
        for p in self.items:
            if p.name in state:
                p.load_state_dict(state[p.name])

    def tags(self) -> list[str]:
        return [t for p in self.items for t in p.tags()]
