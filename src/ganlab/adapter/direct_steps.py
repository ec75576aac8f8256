"""Optimizer steps without Lightning's per-step wrappers, where they would do nothing.

Under manual optimization every ``manual_backward`` goes through the strategy and the precision
plugin and calls the ``on_before_backward``/``on_after_backward`` hooks of the module and of
every callback, and every ``LightningOptimizer.step`` goes through the strategy, the precision
plugin's closure and ``on_before_optimizer_step``. On one device in plain 32-bit precision, with
no callback or module that overrides those hooks, all of that reduces to ``cost.backward()`` and
``optimizer.step()``: :func:`direct_steps_apply` says when, and :class:`DirectOptimizer` then
steps the torch optimizer itself and still counts the step in Lightning's progress
(``trainer.global_step``), as ``LightningOptimizer.step`` does.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy

#: The hooks that Lightning's backward pass and optimizer step call.
STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def overrides_step_hooks(obj: Any, base: type) -> bool:
    """Whether ``obj``'s class overrides one of :data:`STEP_HOOKS` of ``base``."""
    return any(getattr(type(obj), hook, None) is not getattr(base, hook) for hook in STEP_HOOKS)


def direct_steps_apply(trainer: L.Trainer | None, module: L.LightningModule) -> bool:
    """True when Lightning's backward and step wrappers would only call the torch ones: a
    single-device strategy, plain 32-bit precision, no step hook overridden."""
    if trainer is None:
        return False
    return (type(trainer.strategy) is SingleDeviceStrategy
            and type(trainer.strategy.precision_plugin) is Precision
            and not overrides_step_hooks(module, L.LightningModule)
            and not any(overrides_step_hooks(c, L.Callback) for c in trainer.callbacks))


class DirectOptimizer:
    """A Lightning optimizer's torch optimizer, stepped directly and counted as Lightning
    counts its steps; every other attribute (``param_groups``, ``state``) is the torch
    optimizer's."""

    def __init__(self, lightning_optimizer: Any) -> None:
        self.lightning_optimizer = lightning_optimizer
        self.optimizer = lightning_optimizer.optimizer

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.lightning_optimizer._on_before_step()  # Lightning's step progress, profiler
        self.optimizer.step()
        self.lightning_optimizer._on_after_step()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)
