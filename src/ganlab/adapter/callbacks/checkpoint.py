"""Checkpoints counted in iterations, written atomically, never from a diverged state."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lightning as L

from ganlab.adapter.module import GANModule


def save_atomic(trainer: L.Trainer, path: Path) -> None:
    """Write a checkpoint to ``path`` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    trainer.save_checkpoint(tmp, weights_only=False)
    if trainer.global_rank == 0:
        os.replace(tmp, path)


class IterationCheckpoint(L.Callback):
    """Saves ``last.ckpt`` every ``every_n_iterations`` and at the end of training, and keeps
    ``iter_<N>.ckpt`` every ``keep_every_n_iterations`` (0: keep none).

    A checkpoint is written to a temporary file and renamed, so a crash never leaves a
    half-written one; the module refuses to save non-finite weights, so ``last.ckpt`` is
    always the last good state.
    """

    def __init__(
        self, dirpath: str, every_n_iterations: int = 1000, keep_every_n_iterations: int = 0
    ) -> None:
        self.dirpath = Path(dirpath)
        self.every_n_iterations = every_n_iterations
        self.keep_every_n_iterations = keep_every_n_iterations

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.ckpt"

    def _save(self, trainer: L.Trainer, module: GANModule) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        save_atomic(trainer, self.last_path)
        keep = self.keep_every_n_iterations
        if keep and module.iteration % keep == 0 and trainer.global_rank == 0:
            kept = self.dirpath / f"iter_{module.iteration}.ckpt"
            tmp = kept.with_name(f".{kept.name}.tmp")
            shutil.copyfile(self.last_path, tmp)
            os.replace(tmp, kept)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_iterations and pl_module.iteration % self.every_n_iterations == 0:
            self._save(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer, pl_module)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self._save(trainer, pl_module)
