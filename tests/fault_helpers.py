"""A test-only callback for tests/test_faults.py (put on the path of the runs it starts):
sends a signal to its own process in the middle of a chosen iteration, between the
discriminator's update and the generator's, and records which iterations the process ran."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import lightning as L


class SignalAt(L.Callback):
    """Before G's optimizer step of iteration ``iteration + 1`` (when ``module.iteration ==
    iteration``), send ``signal_name`` to this process; append ``<first> <count>`` (the first
    iteration this process ran and how many it ran) to ``record`` at the end."""

    def __init__(self, iteration: int, signal_name: str, record: str) -> None:
        self.iteration, self.signum = iteration, getattr(signal, signal_name)
        self.record = Path(record)
        self.first: int | None = None
        self.count = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.first is None:
            self.first = int(pl_module.iteration)
        self.count += 1

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        generator_step = getattr(optimizer, "_optimizer", optimizer) is trainer.optimizers[0]
        if pl_module.iteration == self.iteration and generator_step:
            os.kill(os.getpid(), self.signum)

    def _write(self) -> None:
        with open(self.record, "a") as f:
            f.write(f"{self.first} {self.count}\n")

    def on_train_end(self, trainer, pl_module) -> None:
        self._write()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._write()
