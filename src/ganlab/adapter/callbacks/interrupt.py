"""Stopping on a signal without losing work: SIGTERM (a scheduler's preemption or time limit),
SIGINT (Ctrl-C) and a requeue signal (SLURM's ``--signal``) are noted when they arrive and acted
on at the end of the iteration that is running, never inside it: the checkpoint holds a whole
iteration, so resuming from it is bit-exact.

At that iteration boundary every data-parallel rank learns of the signal (one all-reduce of a
flag per iteration), all ranks save ``last.ckpt`` together, and :class:`Interrupted` ends the
run; the CLI prints one line with the iteration and the ``resume=`` command and exits with
128 + the signal number. Under SLURM a requeue signal also runs ``scontrol requeue <job>``
on rank 0; the requeued job finds the checkpoint in its own run directory and continues there
(``ganlab.app.train``). A second Ctrl-C stops at once, without saving.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch

from ganlab.adapter.callbacks.checkpoint import IterationCheckpoint
from ganlab.core.errors import Interrupted


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes: ``<array job>_<task>`` in a job array, else the job's."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job is not None:
        return f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    return os.environ.get("SLURM_JOB_ID")


def _signal_number(name: str | int) -> int:
    return int(name) if isinstance(name, int) else int(getattr(signal, str(name).upper()))


class InterruptCallback(L.Callback):
    """Turns ``signals`` and ``requeue_signals`` into a save at the next iteration boundary and
    an :class:`Interrupted` exception (see the module docstring).

    Args:
        signals: signals that save and stop (names such as ``SIGTERM``).
        requeue_signals: signals that save, requeue the SLURM job (when running under SLURM)
            and stop. ``SIGUSR1`` is Lightning's SLURM convention, ``SIGUSR2`` submitit's
            (``hydra/launcher=slurm`` asks SLURM for it before the time limit).
        requeue_command: the command run on rank 0 to requeue; ``{job_id}`` is replaced.
    """

    def __init__(self, signals: Sequence[str] = ("SIGTERM", "SIGINT"),
                 requeue_signals: Sequence[str] = ("SIGUSR1", "SIGUSR2"),
                 requeue_command: str = "scontrol requeue {job_id}") -> None:
        self.signals = [_signal_number(s) for s in signals]
        self.requeue_signals = [_signal_number(s) for s in requeue_signals]
        self.requeue_command = requeue_command
        #: The signal received and not yet acted on (0: none).
        self.pending = 0
        self._previous: dict[int, Any] = {}
        self._module: Any = None
        self._rank = 0

    # -- the handler: only notes the signal --------------------------------------------------
    def _handle(self, signum: int, _frame: Any) -> None:
        if self.pending == signal.SIGINT and signum == signal.SIGINT:
            # The second Ctrl-C: stop now, inside the iteration; nothing is saved.
            raise Interrupted(signum, int(getattr(self._module, "iteration", 0)), None,
                              rank=self._rank)
        self.pending = signum

    def on_train_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._module, self._rank = pl_module, trainer.global_rank
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in {*self.signals, *self.requeue_signals}:
            self._previous[signum] = signal.signal(signum, self._handle)
        if trainer.global_rank == 0:
            _spare_the_main_process()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        self._previous.clear()

    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        self._restore()

    def on_exception(self, trainer: L.Trainer, pl_module: Any, exception: BaseException) -> None:
        self._restore()

    def wants_batch_end(self) -> bool:
        """A signal is pending: GANModule ends its batch after the running iteration."""
        return bool(self.pending)

    # -- at the iteration boundary -----------------------------------------------------------
    def _agreed_signal(self, trainer: L.Trainer) -> int:
        """The signal any rank received (the largest number), the same on every rank."""
        if trainer.world_size == 1:
            return self.pending
        import torch.distributed as dist

        flag = torch.tensor([self.pending], device=trainer.strategy.root_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item())

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        signum = self._agreed_signal(trainer)
        if not signum:
            return
        checkpoint = next((c for c in trainer.callbacks if isinstance(c, IterationCheckpoint)),
                          None)
        path = None
        if checkpoint is not None:
            checkpoint.save(trainer, pl_module)
            path = str(checkpoint.last_path)
        requeued = False
        job_id = slurm_job_id()
        if signum in self.requeue_signals and job_id is not None:
            requeued = True
            if trainer.global_rank == 0:
                self._requeue(job_id)
        raise Interrupted(signum, int(pl_module.iteration), path, requeued=requeued,
                          rank=trainer.global_rank)

    def _requeue(self, job_id: str) -> None:
        command = shlex.split(self.requeue_command.format(job_id=job_id))
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            print(f"ganlab: warning: could not requeue: {' '.join(command)}: {exc}",
                  file=sys.stderr, flush=True)
            return
        if result.returncode != 0:
            why = " ".join((result.stderr or result.stdout).split())[:200]
            print(f"ganlab: warning: {' '.join(command)} failed ({why})", file=sys.stderr,
                  flush=True)


def _spare_the_main_process() -> None:
    """Lightning's DDP launcher watches its child ranks and, when one exits with an error,
    SIGKILLs them all and itself within 5 s; the rank-0 process would die without a word and
    with status -9. Keep the killing of the other children, not of rank 0: rank 0 meets the
    lost peer in its next collective (at once for a dead process, after the process group's
    timeout for a hung one) and stops with one line."""
    for thread in threading.enumerate():
        children = getattr(thread, "_child_processes", None)
        if thread.name == "child-process-observer" and children is not None:
            def terminate_children(children: list = children, thread: Any = thread) -> None:
                for proc in children:
                    proc.send_signal(thread._termination_signal)

            thread._terminate_all = terminate_children
