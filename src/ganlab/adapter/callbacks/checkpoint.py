"""Checkpoints counted in iterations, written atomically, never from a diverged state."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L

from ganlab.adapter.module import GANModule
from ganlab.core.atomic import atomic_path
from ganlab.core.checkpoints import SafeCheckpointIO


def save_atomic(trainer: L.Trainer, path: Path) -> None:
    """Write a checkpoint to ``path`` through a temporary file and an atomic rename (a failed
    write raises :class:`ganlab.core.atomic.WriteFailed` naming ``path``)."""
    # SafeCheckpointIO writes atomically itself; ranks other than 0 only join the barrier.
    if isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO) or trainer.global_rank:
        trainer.save_checkpoint(path, weights_only=False)
        return
    with atomic_path(path) as tmp:
        trainer.save_checkpoint(tmp, weights_only=False)


class IterationCheckpoint(L.Callback):
    """Saves ``last.ckpt`` every ``every_n_iterations`` and at the end of training, and keeps
    ``iter_<N>.ckpt`` every ``keep_every_n_iterations`` (0: keep none).

    A checkpoint is written to a temporary file and renamed, so a crash never leaves a
    half-written one; the module refuses to save non-finite weights, so ``last.ckpt`` is
    always the last good state. Checkpoints are written only between iterations (an
    interruption is saved by :class:`ganlab.adapter.callbacks.interrupt.InterruptCallback`).
    """

    def __init__(
        self, dirpath: str, every_n_iterations: int = 1000, keep_every_n_iterations: int = 0
    ) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_iterations = every_n_iterations
        self.keep_every_n_iterations = keep_every_n_iterations
        #: The iteration of the newest ``last.ckpt`` this run wrote (None: none yet).
        self.saved_iteration: int | None = None

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def save(self, trainer: L.Trainer, module: GANModule) -> None:
        """Write ``last.ckpt`` (and ``iter_<N>.ckpt`` when one is due) for this iteration."""
        if self.saved_iteration == module.iteration:
            return
        self.dirpath.mkdir(parents=True, exist_ok=True)
        save_atomic(trainer, self.last_path)
        self.saved_iteration = module.iteration
        keep = self.keep_every_n_iterations
        if keep and module.iteration % keep == 0 and trainer.global_rank == 0:
            with atomic_path(self.dirpath / f"iter_{module.iteration}.ckpt") as tmp:
                shutil.copyfile(self.last_path, tmp)

    def cadences(self) -> tuple[int, ...]:
        """The iterations it acts at are multiples of these (GANModule ends batches there)."""
        return (self.every_n_iterations, self.keep_every_n_iterations)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_iterations and pl_module.iteration % self.every_n_iterations == 0:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer, pl_module)
