"""The model-family interface: a family is its players and its step (GAN_SPEC §7).

The Lightning adapter (:class:`ganlab.adapter.module.GANModule`) runs any family and gives it
everything a run needs besides: iteration counting (one iteration = one call of
:meth:`Family.train_step`, whatever the family does inside it), the progress bar, logging,
the divergence guard, checkpoints with exact resume, periodic evaluation and the best
checkpoint, and the one-line error contract. A family only says

- which networks it has (:meth:`Family.networks`, saved in every checkpoint under their role)
  and which optimizer trains which of them (:meth:`Family.optimizers`);
- what one iteration does (:meth:`Family.train_step`, with a :class:`TrainContext`);
- how to draw samples for evaluation and pictures (:meth:`Family.sample`,
  :meth:`Family.pictures`) and what it offers to metrics (:attr:`Family.provides`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.players import OptimizerFactory

#: ``(real minibatches, their labels)``: ``train.d_steps`` of each per iteration.
Batch = tuple[list[Tensor], list[Tensor]]


@dataclass
class TrainContext:
    """What a family's step receives from the adapter.

    ``optimizers`` maps each name of :meth:`Family.optimizers` to its optimizer;
    :meth:`update` is the one way to take a step with one (zero the gradients, back-propagate
    through the strategy and precision plugin, step). ``noise`` is the run's generator of
    training noise (checkpointed); ``world_size``/``rank`` let a data-parallel run draw one
    global noise batch and keep its own rows.
    """

    iteration: int
    total_iterations: int
    optimizers: dict[str, Any]
    backward: Callable[[Tensor], None]
    noise: torch.Generator
    world_size: int = 1
    rank: int = 0

    def update(self, name: str, cost: Tensor) -> None:
        """One step of optimizer ``name`` on ``cost``."""
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        self.backward(cost)
        optimizer.step()

    def local_rows(self, batch: Tensor) -> Tensor:
        """This process's rows of a global batch of ``world_size * n`` rows."""
        if self.world_size == 1:
            return batch
        n = batch.shape[0] // self.world_size
        return batch[self.rank * n : (self.rank + 1) * n]


class Family:
    """Base of every model family."""

    name: ClassVar[str] = "family"
    #: The run's length in iterations (what schedules read; 0 when unknown).
    total_iterations: int = 0
    #: Capabilities the family offers to metrics and pictures (e.g. ``generator.classes``,
    #: ``model.reconstruct``, ``model.encode``).
    provides: frozenset[str] = frozenset()
    #: Whether one iteration reads ``train.d_steps`` minibatches (the GAN's k discriminator
    #: steps, Goodfellow et al. 2014 Algorithm 1); any other family takes one minibatch per
    #: iteration, and :meth:`check_config` refuses ``train.d_steps`` other than 1.
    reads_d_steps: ClassVar[bool] = False

    @classmethod
    def check_config(cls, cfg: Any) -> None:
        """What the builder checks of every family before ``from_config``: the minibatches an
        iteration takes."""
        if not cls.reads_d_steps and int(cfg.train.d_steps) != 1:
            raise GanlabError(f"model={cls.name} takes one minibatch per iteration: "
                              f"train.d_steps must be 1, got {cfg.train.d_steps}")

    @property
    def steps_per_iteration(self) -> int:
        """Optimizer steps one iteration takes (what Lightning's ``global_step`` counts)."""
        return len(self.optimizers())

    def networks(self) -> dict[str, nn.Module]:
        """Every network of the run by role (registered on the LightningModule as attributes
        of those names, so checkpoints hold ``<role>.<parameter>``)."""
        raise NotImplementedError

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        """``name -> (optimizer factory, roles whose parameters it trains)``, in the order
        the adapter creates them."""
        raise NotImplementedError

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """One iteration; returns detached scalars to log (as ``train/<name>``)."""
        raise NotImplementedError

    @property
    def evaluated(self) -> nn.Module:
        """The network whose samples are measured and shown (put in eval mode by the caller)."""
        raise NotImplementedError

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` inputs of :attr:`evaluated` drawn from ``generator``."""
        raise NotImplementedError

    def sample_prior(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` draws of the prior alone, without any code (the latent by default)."""
        return self.sample_latent(n, generator)

    def summarize(self, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """The logged scalars of a step's outputs (their means by default)."""
        return {k: v.float().mean() for k, v in outputs.items()}

    def decode(self, latent: Tensor) -> Tensor:
        """Samples of :attr:`evaluated` for given inputs (no grad, eval mode: the caller's)."""
        return self.evaluated(latent)

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """The family's own image grids: ``name -> (images in [-1, 1], images per row)``;
        ``sampler`` is the adapter (``generate``, ``generate_from``, ``device``)."""
        return {}

    def log_values(self) -> dict[str, float]:
        """Extra scalars of the last step (plugins' values, ...), without a prefix."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """State outside the networks (plugins, samplers), saved in every checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def tags(self) -> list[str]:
        """W&B tags of this family's run."""
        return [f"model={self.name}"]
