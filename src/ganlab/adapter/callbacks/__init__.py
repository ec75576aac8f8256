"""Lightning callbacks of a ganlab run: checkpoints, evaluation, sample figures."""

from __future__ import annotations

from typing import Any


def due(trainer: Any, module: Any, every_n_iterations: int) -> bool:
    """True after every ``every_n_iterations``-th iteration, except the last one (which the
    ``on_train_end`` hooks handle)."""
    n, it = every_n_iterations, module.iteration
    return bool(n) and it % n == 0 and it < trainer.datamodule.iterations
