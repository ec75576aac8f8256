"""GANModule: alternating discriminator and generator updates (Goodfellow et al. 2014, Alg. 1).

One *iteration* is ``k`` discriminator updates, each on a fresh real minibatch and fresh noise,
followed by one generator update. ``train.iterations = N`` means exactly ``N`` generator and
``k * N`` discriminator updates (Lightning's ``global_step`` counts every optimizer step under
manual optimization, i.e. ``(k + 1) * N``; ganlab counts in iterations).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor, nn
from torch.optim import Optimizer

from ganlab.conditioning.base import CondDStep, CondGStep, Conditioning, Unconditional
from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.core.rng import rng_state, set_rng_state
from ganlab.losses import GANLoss
from ganlab.tricks.base import DStep, GStep, Trick, TrickList

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]

NOISE = ("normal", "uniform")


class GANModule(L.LightningModule):
    """A GAN trained by manual optimization.

    Args:
        generator: maps ``(B, latent_dim + code_dim)`` inputs (``z``, then the conditioning's
            code, if any) to ``(B, *data_shape)`` samples.
        discriminator: maps samples to logits ``(B,)`` (through ``conditioning.discriminate``).
        loss: the adversarial objective (:mod:`ganlab.losses`).
        g_optimizer, d_optimizer: build an optimizer from parameters (Hydra ``_partial_``).
        latent_dim: size of ``z``.
        noise: ``normal`` (z ~ N(0, I)) or ``uniform`` (z ~ U[-1, 1]).
        tricks: :class:`ganlab.tricks.Trick` objects, applied in order.
        conditioning: what G and D receive besides ``z`` and ``x`` (class labels, latent codes,
            ...; :mod:`ganlab.conditioning`); unconditional by default. Its hooks run before
            the tricks'.
        log_every_n_iterations: how often scalars are logged (and divergence is checked).
        seed: seeds the generator of ``z``.
        config: the run's resolved config, stored in every checkpoint.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: GANLoss,
        g_optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        latent_dim: int,
        noise: str = "normal",
        tricks: Iterable[Trick] = (),
        log_every_n_iterations: int = 50,
        seed: int = 0,
        config: dict[str, Any] | None = None,
        conditioning: Conditioning | None = None,
    ) -> None:
        super().__init__()
        if noise not in NOISE:
            raise GanlabError(f"unknown noise '{noise}'; valid: {', '.join(NOISE)}")
        self.automatic_optimization = False
        self.generator = generator
        self.discriminator = discriminator
        self.loss = loss
        self.g_optimizer_factory = g_optimizer
        self.d_optimizer_factory = d_optimizer
        self.latent_dim = latent_dim
        self.noise = noise
        self.tricks = TrickList(list(tricks))
        self.log_every_n_iterations = max(int(log_every_n_iterations), 1)
        self.seed = seed
        self.config = config or {}
        #: Completed iterations (generator updates).
        self.iteration = 0
        self._z_generator: torch.Generator | None = None
        self._pending_rng: dict[str, Any] | None = None
        self._last: dict[str, Tensor] = {}
        #: Labels of the real minibatch of the current step (set by ``training_step``).
        self._real_labels: Tensor | None = None
        self.conditioning = conditioning if conditioning is not None else Unconditional()
        self.conditioning.setup(self)
        for trick in self.tricks:
            trick.setup(self)

    # -- noise ----------------------------------------------------------------------------
    @property
    def z_generator(self) -> torch.Generator:
        """The generator of ``z`` (on this module's device), part of the checkpoint."""
        if self._z_generator is None or self._z_generator.device != self.device:
            g = torch.Generator(device=self.device)
            g.manual_seed(self.seed + 1_000_003)
            self._z_generator = g
        return self._z_generator

    def training_z(self, n: int) -> Tensor:
        """This process's ``n`` rows of the global noise batch of ``world_size * n`` rows, so a
        data-parallel run draws the same z as one process with the global batch."""
        trainer = self._trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        z = self.sample_z(world * n)
        return z[rank * n : (rank + 1) * n] if world > 1 else z

    def sample_z(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` inputs of G: ``z`` from the prior p_z, then the conditioning's code (class
        one-hot, InfoGAN codes; none for an unconditional run), both drawn from ``generator``."""
        gen = generator if generator is not None else self.z_generator
        z = self.sample_prior(n, gen)
        code = self.conditioning.sample_code(n, gen)
        return z if code is None else torch.cat([z, code.to(z.dtype)], 1)

    def sample_prior(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` latent vectors ``z`` from the prior p_z (without any code)."""
        shape = (n, self.latent_dim)
        if self.noise == "uniform":
            return torch.rand(shape, generator=generator, device=generator.device,
                              dtype=self.dtype) * 2 - 1
        return torch.randn(shape, generator=generator, device=generator.device, dtype=self.dtype)

    def fake_condition(self, latent: Tensor) -> Tensor | None:
        """What D receives with ``G(latent)`` (the requested class, the code, ...)."""
        return self.conditioning.fake_condition(
            latent[:, : self.latent_dim], latent[:, self.latent_dim :]
        )

    @property
    def eval_generator(self) -> nn.Module:
        """The generator used for samples and evaluation: ``generator_ema`` when a trick has
        registered one (an exponential moving average of G), else ``generator``."""
        return getattr(self, "generator_ema", self.generator)

    @torch.no_grad()
    def generate(self, n: int, seed: int, batch_size: int = 1000) -> Tensor:
        """``n`` samples of :attr:`eval_generator` in eval mode from a fixed noise seed."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        net = self.eval_generator
        with evaluating(net):
            out = [net(self.sample_z(min(batch_size, n - i), gen)) for i in range(0, n, batch_size)]
        return torch.cat(out)

    @torch.no_grad()
    def generate_from(self, latent: Tensor, batch_size: int = 1000) -> Tensor:
        """Samples of :attr:`eval_generator` in eval mode for given inputs ``(n, latent_dim +
        code_dim)`` (e.g. ``z`` with a requested class's code)."""
        net = self.eval_generator
        with evaluating(net):
            out = [net(part.to(self.device)) for part in latent.split(batch_size)]
        return torch.cat(out)

    @torch.no_grad()
    def generate_classes(self, labels: Tensor, seed: int, batch_size: int = 1000) -> Tensor:
        """Samples of the requested classes ``labels`` (class-conditional runs), ``z`` drawn
        from a fixed noise seed."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed)
        z = self.sample_prior(labels.shape[0], gen)
        code = self.conditioning.class_code(labels.to(self.device)).to(z.dtype)
        return self.generate_from(torch.cat([z, code], 1), batch_size)

    # -- optimization ---------------------------------------------------------------------
    def configure_optimizers(self) -> list[Optimizer]:
        return [
            self.g_optimizer_factory(self.generator.parameters()),
            self.d_optimizer_factory(self.discriminator.parameters()),
        ]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        real_minibatches, labels = batch
        g_opt, d_opt = self.optimizers()
        for real, real_labels in zip(real_minibatches, labels, strict=True):
            self._real_labels = real_labels
            d_cost = self.discriminator_step(real, d_opt)
        g_cost = self.generator_step(real_minibatches[-1], g_opt)
        self.iteration += 1
        self._last["d_loss"] = d_cost.detach()
        self._last["g_loss"] = g_cost.detach()
        if self.iteration % self.log_every_n_iterations == 0:
            self._log_scalars()

    def discriminator_step(self, real: Tensor, optimizer: Any) -> Tensor:
        """One update of D on a real minibatch and a fresh fake one."""
        cond = self.conditioning
        with torch.no_grad():
            latent = self.training_z(real.shape[0])
            fake = self.generator(latent)
            fake_cond = self.fake_condition(latent)
            real_cond = cond.real_condition(real, self._real_labels, self)
        real_in = self.tricks.d_input(real, self.iteration)
        fake_in = self.tricks.d_input(fake, self.iteration)
        real_logits, real_aux = cond.discriminate(self.discriminator, real_in, real_cond)
        fake_logits, fake_aux = cond.discriminate(self.discriminator, fake_in, fake_cond)
        cost = self.loss.d_loss(real_logits, fake_logits)
        penalty = self.loss.d_penalty(self.discriminator, real_in, fake_in)
        if penalty is not None:
            cost = cost + penalty
        cost = cond.d_cost(cost, CondDStep(
            real_in, fake_in, self._real_labels, real_cond, fake_cond, real_logits, fake_logits,
            real_aux, fake_aux, self.iteration), self)
        step = DStep(real_in, fake_in, real_logits, fake_logits, self.iteration)
        for trick in self.tricks:
            cost = trick.d_cost(cost, step, self)
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(cost)
        optimizer.step()
        self.loss.after_d_step(self.discriminator)
        for trick in self.tricks:
            trick.after_d_step(self)
        self._last["real_logits"] = real_logits.detach()
        self._last["fake_logits"] = fake_logits.detach()
        return cost

    def generator_step(self, real: Tensor, optimizer: Any) -> Tensor:
        """One update of G; D's parameters take no gradient."""
        cond = self.conditioning
        latent = self.training_z(real.shape[0])
        fake = self.generator(latent)
        fake_cond = self.fake_condition(latent)
        self.discriminator.requires_grad_(False)
        try:
            fake_in = self.tricks.d_input(fake, self.iteration)
            fake_logits, fake_aux = cond.discriminate(self.discriminator, fake_in, fake_cond)
            cost = self.loss.g_loss(fake_logits)
            cost = cond.g_cost(cost, CondGStep(
                real, fake_in, latent, fake_cond, fake_logits, fake_aux, self.iteration), self)
            step = GStep(real, fake_in, fake_logits, self.iteration)
            for trick in self.tricks:
                cost = trick.g_cost(cost, step, self)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(cost)
        finally:
            self.discriminator.requires_grad_(True)
        optimizer.step()
        for trick in self.tricks:
            trick.after_g_step(self)
        return cost

    # -- logging and divergence -----------------------------------------------------------
    def _log_scalars(self) -> None:
        last = self._last
        values = torch.stack(
            [
                last["d_loss"],
                last["g_loss"],
                torch.sigmoid(last["real_logits"]).mean(),
                torch.sigmoid(last["fake_logits"]).mean(),
                last["real_logits"].mean(),
                last["fake_logits"].mean(),
            ]
        ).tolist()
        names = ["d_loss", "g_loss", "D_x", "D_G_z", "logit_real", "logit_fake"]
        scalars = {f"train/{k}": v for k, v in zip(names, values, strict=True)}
        for trick in self.tricks:
            scalars.update({f"train/{trick.name}/{k}": v for k, v in trick.log_values().items()})
        cond = self.conditioning
        scalars.update({f"train/{cond.name}/{k}": v for k, v in cond.log_values().items()})
        self.check_finite(scalars)
        self.log_metrics(scalars)
        self.log("d_loss", scalars["train/d_loss"], prog_bar=True, logger=False)
        self.log("g_loss", scalars["train/g_loss"], prog_bar=True, logger=False)

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
        self.check_finite({k: float(v.mean()) for k, v in self._last.items()})
        checkpoint["ganlab"] = {
            "iteration": self.iteration,
            "config": self.config,
            "z_generator": self.z_generator.get_state(),
            "rng": rng_state(),
            "tricks": self.tricks.state_dict(),
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
        self.tricks.load_state_dict(state.get("tricks", {}))
        self._pending_rng = state

    def on_train_start(self) -> None:
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng["rng"])
            self.z_generator.set_state(self._pending_rng["z_generator"].to("cpu"))
            self._pending_rng = None
