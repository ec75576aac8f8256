"""The trick interface: a small object whose hooks the training step calls.

The training step never branches on trick names. Each hook has a neutral default, so a trick
overrides only what it changes. The order of ``tricks=[a, b]`` is the order in which hooks
run. A trick that must own a hook alone (for example one that replaces the generator cost)
lists it in ``exclusive_hooks``; two tricks claiming the same one fail at start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor

from ganlab.core.errors import GanlabError

if TYPE_CHECKING:
    from ganlab.adapter.module import GANModule


@dataclass
class DStep:
    """What a discriminator step has computed, handed to :meth:`Trick.d_cost`."""

    real: Tensor
    fake: Tensor
    real_logits: Tensor
    fake_logits: Tensor
    iteration: int


@dataclass
class GStep:
    """What a generator step has computed, handed to :meth:`Trick.g_cost`."""

    real: Tensor
    fake: Tensor
    fake_logits: Tensor
    iteration: int


class Trick:
    """Base class of every trick; all hooks are no-ops."""

    name: ClassVar[str] = "trick"
    exclusive_hooks: ClassVar[frozenset[str]] = frozenset()

    def setup(self, module: GANModule) -> None:
        """Called once the networks are built (may wrap or modify them)."""

    def d_input(self, x: Tensor, iteration: int) -> Tensor:
        """Transform every input of D, real or fake, in both D and G steps."""
        return x

    def d_cost(self, cost: Tensor, step: DStep, module: GANModule) -> Tensor:
        """Return D's cost, possibly with extra terms."""
        return cost

    def g_cost(self, cost: Tensor, step: GStep, module: GANModule) -> Tensor:
        """Return G's cost, possibly with extra terms."""
        return cost

    def after_d_step(self, module: GANModule) -> None:
        """Called after each discriminator optimizer step."""

    def after_g_step(self, module: GANModule) -> None:
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
        """W&B tags of this trick."""
        return [self.name]


class TrickList:
    """The tricks of a run, applied in order; checks exclusive hooks at construction.

    Tricks hold no ``nn.Parameter`` of their own: one that needs learned weights adds them to
    a network in :meth:`Trick.setup`, so they are optimised and checkpointed with it.
    """

    def __init__(self, tricks: list[Trick]) -> None:
        owners: dict[str, str] = {}
        for trick in tricks:
            for hook in trick.exclusive_hooks:
                if hook in owners:
                    raise GanlabError(
                        f"tricks '{owners[hook]}' and '{trick.name}' both need hook '{hook}' "
                        "exclusively; use only one of them"
                    )
                owners[hook] = trick.name
        self.items = list(tricks)

    def __iter__(self) -> Iterator[Trick]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def d_input(self, x: Tensor, iteration: int) -> Tensor:
        for t in self.items:
            x = t.d_input(x, iteration)
        return x

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {t.name: t.state_dict() for t in self.items}

    def load_state_dict(self, state: dict[str, dict[str, Any]]) -> None:
        for t in self.items:
            if t.name in state:
                t.load_state_dict(state[t.name])
