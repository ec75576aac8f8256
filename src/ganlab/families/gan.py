"""The GAN family: alternating discriminator and generator updates (Goodfellow et al. 2014,
Algorithm 1), with every loss, trick, regulariser and conditioning kind as plugins.

One *iteration* is ``k`` discriminator updates, each on a fresh real minibatch and fresh noise,
followed by one generator update. ``train.iterations = N`` means exactly ``N`` generator and
``k * N`` discriminator updates (Lightning's ``global_step`` counts every optimizer step under
manual optimization, i.e. ``(k + 1) * N``; ganlab counts in iterations).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.conditioning.base import Conditioning, Unconditional
from ganlab.core.capabilities import Component, check, declared
from ganlab.core.errors import GanlabError
from ganlab.core.family import Batch, Family, TrainContext
from ganlab.core.players import OptimizerFactory, Players, Setup
from ganlab.core.plugin import Plugin, PluginList
from ganlab.core.step import DStep, GStep
from ganlab.data.base import data_capabilities
from ganlab.nets.capabilities import network_capabilities

NOISE = ("normal", "uniform")


def run_components(players: Players, loss: Any, plugins: Iterable[Plugin],
                   data_capabilities: Iterable[str], names: dict[str, str]) -> list[Component]:
    """The parts of a GAN run as :func:`ganlab.core.capabilities.check` sees them; ``names``
    gives the config names of ``generator``, ``discriminator``, ``loss`` and ``data``."""
    def name(role: str) -> str:
        return f"{role} '{names.get(role, role)}'"

    parts = [
        Component(name(role), frozenset(f"{role}.{c}" for c in
                                        declared(net, "capabilities") | network_capabilities(net)),
                  owner=role)
        for role, net in (("generator", players.generator),
                          ("discriminator", players.discriminator))
    ]
    parts.append(Component(name("loss"), declared(loss, "provides"), owner="loss"))
    parts.append(Component(name("data"), frozenset(data_capabilities), owner="data"))
    parts += [Component(p.who, frozenset(p.provides), frozenset(p.needs), frozenset(p.excludes),
                        exclusive=True) for p in plugins]
    return parts


class GAN(Family):
    """Algorithm 1 of Goodfellow et al. (2014) with the run's loss and plugins.

    Args:
        generator: maps ``(B, latent_dim + code_dim)`` inputs (``z``, then the conditioning's
            code, if any) to ``(B, *data_shape)`` samples.
        discriminator: maps samples to logits ``(B,)`` (through ``conditioning.discriminate``).
        loss: the adversarial objective (:mod:`ganlab.losses`); its regularisers join the
            plugins.
        g_optimizer, d_optimizer: build an optimizer from parameters (Hydra ``_partial_``).
        latent_dim: size of ``z``.
        noise: ``normal`` (z ~ N(0, I)) or ``uniform`` (z ~ U[-1, 1]).
        plugins: tricks (:mod:`ganlab.tricks`), in the order given within each stage.
        conditioning: what G and D receive besides ``z`` and ``x`` (unconditional by default).
        total_iterations: the run's length (schedules read it).
        data_shape: the shape of one sample.
        data_capabilities: what the data offers (``data.labels``, ``data.images``, ...).
        names: config names for messages (``generator``, ``discriminator``, ``loss``, ``data``).
        seed: the run's seed (plugins with their own random numbers may follow it).
    """

    name = "gan"

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: Any,
        g_optimizer: OptimizerFactory,
        d_optimizer: OptimizerFactory,
        latent_dim: int,
        noise: str = "normal",
        plugins: Iterable[Plugin] = (),
        conditioning: Conditioning | None = None,
        total_iterations: int = 0,
        data_shape: tuple[int, ...] = (),
        data_capabilities: Iterable[str] = (),
        names: dict[str, str] | None = None,
        seed: int = 0,
    ) -> None:
        if noise not in NOISE:
            raise GanlabError(f"unknown noise '{noise}'; valid: {', '.join(NOISE)}")
        self.players = Players(generator, discriminator)
        self.loss = loss
        self.latent_dim = int(latent_dim)
        self.noise = noise
        self.total_iterations = int(total_iterations)
        self.conditioning = conditioning if conditioning is not None else Unconditional()
        listed = [*loss.plugins(), self.conditioning, *plugins]
        check(run_components(self.players, loss, listed, data_capabilities, names or {}))
        self.plugins = PluginList(listed)
        self.names = dict(names or {})
        setup = Setup(self.players, loss, {"generator": g_optimizer, "discriminator": d_optimizer},
                      self.total_iterations, tuple(data_shape), self.sample_latent,
                      self.latent_dim, int(seed))
        self.plugins.setup(setup)
        self.optimizer_factories = setup.optimizers
        self.provides = frozenset(c for p in listed for c in p.provides)

    # -- the family interface --------------------------------------------------------------
    #: Discriminator updates per iteration (``train.d_steps``; the data stream delivers them).
    d_steps = 1
    reads_d_steps = True

    @property
    def steps_per_iteration(self) -> int:
        return self.d_steps + 1

    def networks(self) -> dict[str, nn.Module]:
        return self.players.modules()

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        return {"generator": (self.optimizer_factories["generator"], ["generator"]),
                "discriminator": (self.optimizer_factories["discriminator"], ["discriminator"])}

    @property
    def evaluated(self) -> nn.Module:
        return self.players.eval_generator

    def sample_prior(self, n: int, generator: torch.Generator, dtype: torch.dtype | None = None
                     ) -> Tensor:
        """``n`` latent vectors ``z`` from the prior p_z (without any code)."""
        shape = (n, self.latent_dim)
        if self.noise == "uniform":
            return torch.rand(shape, generator=generator, device=generator.device,
                              dtype=dtype) * 2 - 1
        return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype)

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` inputs of G: ``z`` from the prior p_z, then the conditioning's code (class
        one-hot, InfoGAN codes; none for an unconditional run), both drawn from ``generator``."""
        z = self.sample_prior(n, generator)
        code = self.conditioning.sample_code(n, generator)
        return z if code is None else torch.cat([z, code.to(z.dtype)], 1)

    def class_latent(self, labels: Tensor, generator: torch.Generator) -> Tensor:
        """G's inputs asking for the classes ``labels`` (``generator.classes``)."""
        z = self.sample_prior(labels.shape[0], generator)
        return torch.cat([z, self.conditioning.class_code(labels).to(z.dtype)], 1)

    def reconstruct(self, x: Tensor) -> Tensor:
        """``G(E(x))`` for a conditioning that provides ``model.reconstruct``."""
        return self.conditioning.reconstruct(self.evaluated, x)

    def fake_condition(self, latent: Tensor) -> Any:
        """What D receives with ``G(latent)`` (the requested class, the code, ...)."""
        return self.conditioning.fake_condition(
            latent[:, : self.latent_dim], latent[:, self.latent_dim :]
        )

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        return self.conditioning.pictures(sampler, datamodule)

    def log_values(self) -> dict[str, float]:
        return self.plugins.log_values()

    def state_dict(self) -> dict[str, Any]:
        return {"plugins": self.plugins.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plugins.load_state_dict(state.get("plugins", {}))

    def tags(self) -> list[str]:
        """``loss=``, ``generator=``, ``discriminator=`` (their config names), then the
        plugins'."""
        return [*(f"{g}={self.names[g]}" for g in ("loss", "generator", "discriminator")
                  if g in self.names), *self.plugins.tags()]

    # -- the step --------------------------------------------------------------------------
    def critic(self, x: Tensor, condition: Any) -> Tensor:
        """D's logits on ``x`` (already transformed) given ``condition``."""
        return self.conditioning.discriminate(self.players.discriminator, x, condition)[0]

    def features(self, x: Tensor, condition: Any) -> Tensor:
        """D's features of ``x`` given ``condition``."""
        return self.conditioning.features(self.players.discriminator, x, condition)

    def training_latent(self, n: int, ctx: TrainContext) -> Tensor:
        """This process's ``n`` rows of the global noise batch of ``world_size * n`` rows, so a
        data-parallel run draws the same z as one process with the global batch."""
        return ctx.local_rows(self.sample_latent(ctx.world_size * n, ctx.noise))

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        real_minibatches, labels = batch
        for real, real_labels in zip(real_minibatches, labels, strict=True):
            d_cost, real_logits, fake_logits = self.discriminator_step(real, real_labels, ctx)
        g_cost = self.generator_step(real_minibatches[-1], labels[-1], ctx)
        return {"d_loss": d_cost.detach(), "g_loss": g_cost.detach(),
                "real_logits": real_logits.detach(), "fake_logits": fake_logits.detach()}

    def summarize(self, outputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """The logged scalars of a step's outputs: both costs, D(x), D(G(z)) and the mean
        logits."""
        real, fake = outputs["real_logits"], outputs["fake_logits"]
        return {"d_loss": outputs["d_loss"], "g_loss": outputs["g_loss"],
                "D_x": torch.sigmoid(real).mean(), "D_G_z": torch.sigmoid(fake).mean(),
                "logit_real": real.mean(), "logit_fake": fake.mean()}

    def _d_input(self, iteration: int) -> Any:
        return lambda x: self.plugins.d_input(x, iteration)

    def discriminator_step(self, real: Tensor, labels: Tensor | None, ctx: TrainContext
                           ) -> tuple[Tensor, Tensor, Tensor]:
        """One update of D on a real minibatch and a fresh fake one."""
        cond, players, it = self.conditioning, self.players, ctx.iteration
        with torch.no_grad():
            latent = self.training_latent(real.shape[0], ctx)
            fake = players.generator(latent)
            fake_cond = self.fake_condition(latent)
            real_cond = cond.real_condition(real, labels, players)
        real_in = self.plugins.d_input(real, it)
        fake_in = self.plugins.d_input(fake, it)
        real_logits, real_aux = cond.discriminate(players.discriminator, real_in, real_cond)
        fake_logits, fake_aux = cond.discriminate(players.discriminator, fake_in, fake_cond)
        step = DStep(it, self.total_iterations, players, self.loss, real_in, fake_in,
                     real_logits, fake_logits, self.critic, self.features, self._d_input(it),
                     labels, real_cond, fake_cond, real_aux, fake_aux, ctx.optimizers)
        cost = self.plugins.d_cost(self.loss.d_loss(real_logits, fake_logits), step)
        ctx.update("discriminator", cost)
        self.plugins.after_d_step(step)
        return cost, real_logits, fake_logits

    def generator_step(self, real: Tensor, labels: Tensor | None, ctx: TrainContext) -> Tensor:
        """One update of G; D's parameters take no gradient."""
        cond, players, it = self.conditioning, self.players, ctx.iteration
        latent = self.training_latent(real.shape[0], ctx)
        fake = players.generator(latent)
        fake_cond = self.fake_condition(latent)

        def real_condition() -> Any:
            with torch.no_grad():
                return cond.real_condition(real, labels, players)

        players.discriminator.requires_grad_(False)
        try:
            fake_in = self.plugins.d_input(fake, it)
            fake_logits, fake_aux = cond.discriminate(players.discriminator, fake_in, fake_cond)
            step = GStep(it, self.total_iterations, players, self.loss, real, fake_in,
                         fake_logits, self.critic, self.features, self._d_input(it), latent,
                         labels, real_condition, fake_cond, fake_aux, ctx.optimizers)
            objective = self.plugins.g_objective(step)
            cost = self.loss.g_loss(fake_logits) if objective is None else objective
            cost = self.plugins.g_cost(cost, step)
            optimizer = ctx.optimizers["generator"]
            optimizer.zero_grad(set_to_none=True)
            ctx.backward(cost)
        finally:
            players.discriminator.requires_grad_(True)
        optimizer.step()
        self.plugins.after_g_step(step)
        return cost

    # -- building from a config ------------------------------------------------------------
    def judge(self, x: Tensor, labels: Tensor | None) -> Tensor:
        """D's logits on points ``x`` taken as real data with ``labels`` (Figure 1's D)."""
        return self.critic(x, self.conditioning.real_condition(x, labels, self.players))

    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Any) -> GAN:
        """The GAN of ``cfg`` (groups ``generator``, ``discriminator``, ``loss``, ``tricks``,
        ``conditioning``, ``optim``, ``train``) on ``datamodule``'s data; ``build(node, what,
        **kwargs)`` instantiates a node with one-line errors."""
        from ganlab.core.config import choice

        shape = tuple(datamodule.data_shape)
        node = cfg.get("conditioning")
        conditioning = Unconditional() if node is None else build(node, "conditioning")
        conditioning.bind(datamodule)
        extra: dict[str, Any] = {}
        if cfg.generator.net.get("output") == "auto":  # tanh for images in [-1, 1], else linear
            extra["output"] = "tanh" if len(shape) == 3 else "linear"
        if conditioning.code_dim:  # G's input is cat(z, code)
            extra["latent_dim"] = cfg.generator.latent_dim + conditioning.code_dim
        generator = build(cfg.generator.net, "generator", data_shape=shape, **extra)
        tricks = [build(n, f"trick '{name}'") for name, n in (cfg.get("tricks") or {}).items()]
        # D reads the conditioned sample (channels added outside D), then the tricks' layout.
        d_shape = PluginList(tricks).discriminator_shape(conditioning.discriminator_shape(shape))
        discriminator = build(cfg.discriminator.net, "discriminator", data_shape=d_shape)
        names = {g: choice(g) for g in ("generator", "discriminator", "loss", "data")}
        family = cls(
            generator=generator,
            discriminator=discriminator,
            loss=build(cfg.loss, "loss"),
            g_optimizer=build(cfg.optim.generator, "generator optimizer"),
            d_optimizer=build(cfg.optim.discriminator, "discriminator optimizer"),
            latent_dim=cfg.generator.latent_dim,
            noise=cfg.train.noise,
            plugins=tricks,
            conditioning=conditioning,
            total_iterations=int(cfg.train.iterations),
            data_shape=shape,
            data_capabilities=data_capabilities(datamodule),
            names=names,
            seed=int(cfg.seed),
        )
        family.check_shapes(shape, names)
        family.d_steps = int(cfg.train.d_steps)
        return family

    def check_shapes(self, data_shape: tuple[int, ...], names: dict[str, str]) -> None:
        """Fail with one line when G's output or D's input does not fit the data."""
        from ganlab.core.eval_mode import evaluating

        gen_name, disc_name, data_name = (names.get(g, g)
                                          for g in ("generator", "discriminator", "data"))
        players = self.players
        # A D that judges several samples at once (packing) gives one logit per pack.
        per_logit = int(getattr(players.discriminator, "samples_per_logit", 1))
        with evaluating(players.generator, players.discriminator), torch.no_grad():
            try:
                latent = self.sample_latent(2 * per_logit, torch.Generator().manual_seed(0))
                out = players.generator(latent)
            except Exception as exc:  # a mis-sized network fails inside torch
                raise GanlabError(f"generator '{gen_name}' fails on z: {exc}") from None
            if tuple(out.shape[1:]) != tuple(data_shape):
                raise GanlabError(
                    f"generator '{gen_name}' makes samples of shape {tuple(out.shape[1:])} but "
                    f"data '{data_name}' has shape {tuple(data_shape)}"
                )
            try:
                logits = self.critic(out, self.fake_condition(latent))
            except Exception as exc:
                raise GanlabError(
                    f"discriminator '{disc_name}' does not accept data '{data_name}' of shape "
                    f"{tuple(data_shape)}: {exc}"
                ) from None
            if tuple(logits.shape) != (2,):
                unit = "sample" if per_logit == 1 else f"pack of {per_logit} samples"
                raise GanlabError(
                    f"discriminator '{disc_name}' must return one logit per {unit}, "
                    f"got shape {tuple(logits.shape)}"
                )
