"""GANModule: the LightningModule that runs any model family (:mod:`ganlab.core.family`).

It owns what every run needs besides the family's players and step: the iteration counter
(one iteration = one :meth:`Family.train_step`; ``train.iterations = N`` means exactly N of
them), the run's noise generator, logging every ``log_every_n_iterations``, the divergence
guard, and the state that makes a resume bit-exact (iteration, noise generator, global RNGs,
the family's plugins). Lightning's ``global_step`` counts every optimizer step; ganlab counts
in iterations.

One Lightning batch holds up to ``iterations_per_batch`` iterations
(:meth:`GANModule.chunk_length`), so Lightning's per-batch cost (its loop, hooks, data
fetching) is paid once for them. A batch ends wherever the module or a callback acts
(logging, checkpoints, evaluation, pictures, the progress bar: their ``cadences()``), and
after an iteration at which a callback asks for it (``wants_batch_end()``: a signal to stop).
So each of them acts at the same iterations as with one iteration per batch, and a run is
the same for every ``iterations_per_batch``.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor, nn
from torch.optim import Optimizer

from ganlab.adapter.direct_steps import DirectOptimizer, direct_steps_apply
from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.core.family import Family, TrainContext
from ganlab.core.rng import rng_state, set_rng_state


def acts_every_batch(callback: L.Callback) -> bool:
    """Whether ``callback`` overrides Lightning's per-batch training hooks."""
    return any(getattr(type(callback), hook) is not getattr(L.Callback, hook)
               for hook in ("on_train_batch_start", "on_train_batch_end"))


#: ``torch.compile`` modes (``train.compile_mode``).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


class GANModule(L.LightningModule):
    """A model family trained by manual optimization.

    Args:
        family: the players and the step (:class:`ganlab.families.gan.GAN`, ...).
        log_every_n_iterations: how often scalars are logged (and divergence is checked).
        seed: seeds the generator of the training noise.
        config: the run's resolved config, stored in every checkpoint.
        iterations_per_batch: the most iterations one Lightning batch holds (1 under data
            parallelism, whose strategy syncs buffers once per batch).
        compile: compile every network with ``torch.compile`` (``nn.Module.compile``, in place:
            parameter names and checkpoints stay those of the eager run), so the D and G steps
            run as compiled graphs, forward and backward.
        compile_mode: ``torch.compile``'s mode (``default``, ``reduce-overhead``: CUDA graphs,
            ``max-autotune``).
    """

    def __init__(self, family: Family, log_every_n_iterations: int = 50, seed: int = 0,
                 config: dict[str, Any] | None = None, iterations_per_batch: int = 50,
                 compile: bool = False, compile_mode: str = "default") -> None:
        super().__init__()
        if compile_mode not in COMPILE_MODES:
            raise GanlabError(f"train.compile_mode must be one of {', '.join(COMPILE_MODES)}; "
                              f"got {compile_mode!r}")
        if isinstance(iterations_per_batch, bool) or int(iterations_per_batch) < 1:
            raise GanlabError(f"train.iterations_per_batch must be a positive integer; got "
                              f"{iterations_per_batch}")
        self.iterations_per_batch = int(iterations_per_batch)
        self.automatic_optimization = False
        self.family = family
        for role, net in family.networks().items():
            self.add_module(role, net)
            if compile:
                net.compile(mode=compile_mode)
        self.log_every_n_iterations = max(int(log_every_n_iterations), 1)
        self.seed = seed
        self.config = config or {}
        #: Completed iterations.
        self.iteration = 0
        self._noise: torch.Generator | None = None
        self._pending_rng: dict[str, Any] | None = None
        self._last: dict[str, Tensor] = {}
        self._optimizer_names = list(family.optimizers())

    # -- noise and samples ----------------------------------------------------------------
    @property
    def z_generator(self) -> torch.Generator:
        """The generator of the training noise (on this module's device), checkpointed."""
        if self._noise is None or self._noise.device != self.device:
            g = torch.Generator(device=self.device)
            g.manual_seed(self.seed + 1_000_003)
            self._noise = g
        return self._noise

    @property
    def eval_generator(self) -> nn.Module:
        """The network whose samples are measured and shown (e.g. the EMA of G)."""
        return self.family.evaluated

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` inputs of :attr:`eval_generator` drawn from ``generator``."""
        return self.family.sample_latent(n, generator if generator is not None
                                         else self.z_generator)

    def sample_prior(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` draws of the family's prior alone (without codes)."""
        return self.family.sample_prior(n, generator)

    @torch.no_grad()
    def generate(self, n: int, seed: int, batch_size: int = 1000) -> Tensor:
        """``n`` samples of :attr:`eval_generator` in eval mode from a fixed noise seed."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        net = self.eval_generator
        with evaluating(net):
            out = [self.family.decode(self.sample_z(min(batch_size, n - i), gen))
                   for i in range(0, n, batch_size)]
        return torch.cat(out)

    @torch.no_grad()
    def generate_from(self, latent: Tensor, batch_size: int = 1000) -> Tensor:
        """Samples of :attr:`eval_generator` in eval mode for given inputs."""
        with evaluating(self.eval_generator):
            out = [self.family.decode(part.to(self.device)) for part in latent.split(batch_size)]
        return torch.cat(out)

    @torch.no_grad()
    def generate_classes(self, labels: Tensor, seed: int, batch_size: int = 1000) -> Tensor:
        """Samples of the requested classes ``labels`` (families providing
        ``generator.classes``), ``z`` drawn from a fixed noise seed."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        latent = self.family.class_latent(labels.to(self.device), gen)
        return self.generate_from(latent, batch_size)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """The family's reconstruction of ``x`` (``model.reconstruct``), in eval mode."""
        with evaluating(*self.family.networks().values()):
            return self.family.reconstruct(x.to(self.device))

    # -- optimization ---------------------------------------------------------------------
    def configure_optimizers(self) -> list[Optimizer]:
        optimizers = []
        for factory, roles in self.family.optimizers().values():
            params = [p for role in roles for p in getattr(self, role).parameters()]
            optimizers.append(factory(params))
        return optimizers

    def chunk_length(self, iteration: int) -> int:
        """Iterations of the Lightning batch that starts at ``iteration``: at most
        ``iterations_per_batch``, ending at the next iteration where the module logs or a
        callback acts (a multiple of one of their ``cadences()``). One while a callback that
        acts at every batch does not declare its cadences (a user's own Lightning callback
        then sees every iteration, as it was written for)."""
        trainer = self._trainer
        if trainer is None or trainer.world_size > 1:
            return 1
        count = self.iterations_per_batch
        cadences = [self.log_every_n_iterations]
        for callback in trainer.callbacks:
            declared = getattr(callback, "cadences", None)
            if declared is None:
                if acts_every_batch(callback):  # a callback that knows nothing of chunks
                    return 1
                continue
            cadences += [int(c) for c in declared() if c]
        for cadence in cadences:
            count = min(count, cadence - iteration % cadence)
        return count

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """The iterations of a chunk ``(x (K, k, B, ...), y (K, k, B, ...))``, one
        :meth:`Family.train_step` each."""
        optimizers = self.optimizers()
        if not isinstance(optimizers, (list, tuple)):
            optimizers = [optimizers]
        trainer = self._trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        callbacks = trainer.callbacks if trainer else []
        stops = [c.wants_batch_end for c in callbacks if hasattr(c, "wants_batch_end")]
        backward: Any = self.manual_backward
        if direct_steps_apply(trainer, self):
            optimizers = [DirectOptimizer(o) for o in optimizers]
            backward = Tensor.backward
        ctx = TrainContext(self.iteration, self.family.total_iterations,
                           dict(zip(self._optimizer_names, optimizers, strict=True)),
                           backward, self.z_generator, world, rank)
        xs, ys = batch
        for i in range(len(xs)):
            ctx.iteration = self.iteration
            self._last = self.family.train_step((xs[i], ys[i]), ctx)
            self.iteration += 1
            if self.iteration % self.log_every_n_iterations == 0:
                self._log_scalars()
            if any(stop() for stop in stops):
                break

    # -- logging and divergence -----------------------------------------------------------
    def _log_scalars(self) -> None:
        summary = self.family.summarize(self._last)
        values = torch.stack([v.float() for v in summary.values()]).tolist()  # one sync
        scalars = {f"train/{k}": v for k, v in zip(summary, values, strict=True)}
        scalars.update({f"train/{k}": v for k, v in self.family.log_values().items()})
        self.check_finite(scalars)
        self.log_metrics(scalars)
        for key in ("d_loss", "g_loss"):
            if f"train/{key}" in scalars:
                self.log(key, scalars[f"train/{key}"], prog_bar=True, logger=False)

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """Send scalars to every logger with the iteration as the step (rank 0 only)."""
        if self.trainer is None or self.trainer.global_rank != 0:
            return
        for logger in self.trainer.loggers:
            logger.log_metrics({**metrics, "iteration": self.iteration}, step=self.iteration)

    def check_finite(self, scalars: dict[str, float] | None = None) -> None:
        """Stop the run with :class:`GanlabError` if a cost or a weight is NaN or Inf."""
        for name, value in (scalars or {}).items():
            if not math.isfinite(value):
                raise GanlabError(
                    f"training diverged at iteration {self.iteration}: {name} = {value}; "
                    "the last good checkpoint is kept"
                )
        tensors = {k: v for k, v in self.state_dict().items() if v.is_floating_point()}
        finite = [torch.isfinite(v).all() for v in tensors.values()]
        if not finite or bool(torch.stack(finite).all()):  # one device sync
            return
        for name, tensor in tensors.items():
            if not torch.isfinite(tensor).all():
                raise GanlabError(
                    f"training diverged at iteration {self.iteration}: weight {name} is not "
                    "finite; the last good checkpoint is kept"
                )

    # -- checkpoint -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.check_finite({k: float(v.float().mean()) for k, v in self._last.items()})
        checkpoint["ganlab"] = {
            "iteration": self.iteration,
            "config": self.config,
            "z_generator": self.z_generator.get_state(),
            "rng": rng_state(),
            "family": self.family.state_dict(),
            "wandb_id": self._wandb_id(),
        }

    def _wandb_id(self) -> str | None:
        for logger in self.loggers if self._trainer is not None else []:
            if isinstance(logger, WandbLogger) and self.global_rank == 0:
                return str(logger.experiment.id)
        return None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("ganlab")
        if state is None:
            raise GanlabError("not a ganlab checkpoint (no 'ganlab' entry)")
        self.iteration = int(state["iteration"])
        self.family.load_state_dict(state.get("family", {}))
        self._pending_rng = state

    def on_train_start(self) -> None:
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng["rng"])
            self.z_generator.set_state(self._pending_rng["z_generator"].to("cpu"))
            self._pending_rng = None
