"""Learning-rate decay for both players: a linear ramp of every learning rate down to a fraction
of its initial value over the end of training (the linear decay of Radford et al.'s and
Isola et al.'s GAN training scripts; Yazıcı et al. 2019 on why a lower final step sharpens the
last iterates).

With ``T = total_iterations``, ``s = start_iteration``, ``f = final_factor`` and ``lr_0`` each
parameter group's initial learning rate (after ``ttur``, if listed), iteration ``t`` (0-based)
trains with

    lr_t = lr_0 · (1 − (1 − f) · clip((t − s) / (T − s), 0, 1)),

so ``lr_t = lr_0`` up to ``s`` and reaches ``f · lr_0`` at ``t = T``. The rate of iteration
``t + 1`` is set after the generator update of iteration ``t``; ``lr_0`` is kept in each
parameter group (``base_lr``), so it is saved with the optimizers and a resumed run continues
the same schedule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.tricks.base import GStep, Trick


def decay_factor(iteration: int, total: int, start: int, final_factor: float) -> float:
    """``lr_t / lr_0`` at 0-based iteration ``iteration`` (see the module docstring)."""
    if total <= start:
        return 1.0 if iteration < total else final_factor
    progress = min(max((iteration - start) / (total - start), 0.0), 1.0)
    return 1.0 - (1.0 - final_factor) * progress


def _torch_optimizers(optimizers: dict[str, Any] | None) -> Iterable[Any]:
    return [getattr(o, "optimizer", o) for o in (optimizers or {}).values()]


class LRDecay(Trick):
    """Decays the learning rates of G's and D's optimizers linearly to ``final_factor`` times
    their initial value, from ``start_iteration`` to ``total_iterations``.

    Args:
        total_iterations: ``T``, where the decay ends; ``None``: the run's ``train.iterations``.
        start_iteration: ``s``, where it starts.
        final_factor: ``f``, the last learning rate as a fraction of the first, in [0, 1].
    """

    name = "lr_decay"

    def __init__(
        self, total_iterations: int | None = None, start_iteration: int = 0,
        final_factor: float = 0.1,
    ) -> None:
        if total_iterations is not None and total_iterations < 1:
            raise GanlabError(f"lr_decay: total_iterations must be ≥ 1; got {total_iterations}")
        if start_iteration < 0:
            raise GanlabError(f"lr_decay: start_iteration must be ≥ 0; got {start_iteration}")
        if not 0.0 <= final_factor <= 1.0:
            raise GanlabError(f"lr_decay: final_factor must be in [0, 1]; got {final_factor}")
        self.total_iterations = None if total_iterations is None else int(total_iterations)
        self.start_iteration = int(start_iteration)
        self.final_factor = float(final_factor)
        self._factor = 1.0

    def setup(self, setup: Setup) -> None:
        if self.total_iterations is None:
            total = setup.total_iterations
            if not isinstance(total, int) or total < 1:
                raise GanlabError("lr_decay: set tricks.lr_decay.total_iterations (the run "
                                  "has no train.iterations)")
            self.total_iterations = total

    def factor(self, iteration: int) -> float:
        """``lr_t / lr_0`` at 0-based iteration ``iteration``."""
        if self.total_iterations is None:
            raise GanlabError("lr_decay: total_iterations is unknown before setup")
        return decay_factor(iteration, self.total_iterations, self.start_iteration,
                            self.final_factor)

    def after_g_step(self, step: GStep) -> None:
        # step.iteration is the 0-based index of the iteration that is ending.
        self._factor = self.factor(step.iteration + 1)
        for optimizer in _torch_optimizers(step.optimizers):
            for group in optimizer.param_groups:
                base = group.setdefault("base_lr", group["lr"])
                group["lr"] = base * self._factor

    def log_values(self) -> dict[str, float]:
        return {"factor": self._factor}
