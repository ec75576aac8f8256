"""LAPGAN (Denton, Chintala, Szlam & Fergus 2015, "Deep Generative Image Models using a
Laplacian Pyramid of Adversarial Networks"; GAN_SPEC §7).

A Laplacian pyramid of ``K = model.levels`` downsamplings (:mod:`ganlab.nets.lapgan`: ``d``,
``u``, ``h_k = I_k - u(I_{k+1})``) and one GAN per level:

- level ``K`` (coarsest, e.g. 7×7 from 28×28): an unconditional GAN, ``G_K(z_K)`` against
  ``D_K(I_K)``;
- level ``k < K``: a conditional GAN on the residual, ``h̃_k = G_k(z_k, l_k)`` against
  ``D_k(h, l_k)``, ``l_k = u(I_{k+1})`` the upsampled real coarser image.

One iteration (= one call of :meth:`LAPGAN.train_step`, on one real minibatch ``x``) builds the
Gaussian pyramid ``I_0 = x, ..., I_K`` of ``x`` and, for ``k = K, K-1, ..., 0`` (coarse to fine),
takes one step of the optimizer ``discriminator_k`` on the run's loss (non-saturating by
default: ``J_D = 1/2 E softplus(-D_k(h_k, l_k)) + 1/2 E softplus(D_k(h̃_k, l_k))``, real ``h_k``
against fresh fakes ``h̃_k``) and then one step of ``generator_k`` on ``J_G = 1/2 E
softplus(-D_k(h̃_k, l_k))`` with fresh noise. The levels train independently, each on real
coarse images (the paper's §3.2): nothing of level ``k`` depends on the other levels' players.
Samples chain the generators (eq. 3): ``Ĩ_K = G_K(z_K)``, ``Ĩ_k = u(Ĩ_{k+1}) + G_k(z_k,
u(Ĩ_{k+1}))`` (:class:`ganlab.nets.lapgan.LaplacianSampler`); every ``z`` comes from the run's
checkpointed noise generator, so a resumed run is exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.family import Batch, Family, TrainContext
from ganlab.core.players import OptimizerFactory
from ganlab.core.seeds import SAMPLE_SEED
from ganlab.losses import GANLoss, NonSaturating
from ganlab.nets.lapgan import (
    LaplacianSampler,
    check_pyramid_shape,
    gaussian_pyramid,
    up,
)

NOISE = ("normal", "uniform")
#: Samples in the level-by-level picture.
PYRAMID_ROWS = 8


def parameter_count(module: nn.Module) -> int:
    """Number of parameters of ``module``."""
    return sum(p.numel() for p in module.parameters())


class LAPGAN(Family):
    """``model=lapgan``.

    Args:
        coarse_generator: ``G_K``, ``z_K (B, latent_dim) -> I_K (B, C, H/2^K, W/2^K)``.
        coarse_discriminator: ``D_K``, ``I_K -> logits (B,)``.
        generators: ``[G_0, ..., G_{K-1}]`` (finest first), each ``(z_k, l_k) -> h̃_k``
            (:class:`ganlab.nets.lapgan.ResidualGenerator`).
        discriminators: ``[D_0, ..., D_{K-1}]``, each ``(h, l_k) -> logits (B,)``
            (:class:`ganlab.nets.lapgan.ResidualDiscriminator`).
        optimizers: factories ``generator`` and ``discriminator``, used for every level.
        latent_dim: size of ``z_K``.
        loss: the adversarial costs of every level (non-saturating by default).
        noise: ``normal`` (``N(0, 1)``) or ``uniform`` (``U[-1, 1]``), for every ``z``.
    """

    name: ClassVar[str] = "lapgan"

    def __init__(
        self,
        coarse_generator: nn.Module,
        coarse_discriminator: nn.Module,
        generators: Sequence[nn.Module],
        discriminators: Sequence[nn.Module],
        optimizers: dict[str, OptimizerFactory],
        latent_dim: int,
        loss: GANLoss | None = None,
        noise: str = "normal",
    ) -> None:
        missing = {"generator", "discriminator"} - set(optimizers)
        if missing:
            raise GanlabError(f"model=lapgan: no optimizer for {', '.join(sorted(missing))}")
        if len(generators) != len(discriminators) or not generators:
            raise GanlabError(
                f"model=lapgan needs one generator and one discriminator per finer level; got "
                f"{len(generators)} and {len(discriminators)}"
            )
        if noise not in NOISE:
            raise GanlabError(f"unknown noise '{noise}'; valid: {', '.join(NOISE)}")
        self.levels = len(generators)
        #: ``generators[k]``, ``discriminators[k]``: the players of level ``k`` (``K``: coarse).
        self.generators = [*generators, coarse_generator]
        self.discriminators = [*discriminators, coarse_discriminator]
        self.factories = dict(optimizers)
        self.latent_dim = int(latent_dim)
        self.loss = loss if loss is not None else NonSaturating()
        self.noise = noise
        self.sampler = LaplacianSampler(coarse_generator, list(generators), self.latent_dim)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Callable[..., Any]) -> LAPGAN:
        """The family of ``cfg.model`` for ``datamodule``'s images: ``model.coarse`` builds
        level ``K``'s players, ``model.residual`` those of every finer level, ``cfg.loss`` the
        costs."""
        m = cfg.model
        if cfg.get("tricks"):
            raise GanlabError(f"model=lapgan runs no tricks; got tricks={list(cfg.tricks)}")
        if cfg.get("conditioning") is not None:
            raise GanlabError("model=lapgan is unconditional; set conditioning=null")
        levels = m.levels
        c, h, w = check_pyramid_shape(datamodule.data_shape, levels)
        loss = build(cfg.loss, "loss")
        if loss.plugins():
            raise GanlabError(
                f"model=lapgan runs no regularisers; loss {type(loss).__name__} brings "
                f"{', '.join(sorted(loss.regularisers))}"
            )
        latent_dim = int(m.latent_dim)
        coarse_shape = [c, h // 2**levels, w // 2**levels]
        coarse_g = build(m.coarse.generator, "model.coarse.generator", latent_dim=latent_dim,
                         data_shape=coarse_shape)
        coarse_d = build(m.coarse.discriminator, "model.coarse.discriminator",
                         data_shape=coarse_shape)
        shapes = [[c, h // 2**k, w // 2**k] for k in range(levels)]
        gens = [build(m.residual.generator, f"model.residual.generator (level {k})",
                      data_shape=s) for k, s in enumerate(shapes)]
        discs = [build(m.residual.discriminator, f"model.residual.discriminator (level {k})",
                       data_shape=s) for k, s in enumerate(shapes)]
        factories = {name: build(node, f"model.optimizers.{name}")
                     for name, node in m.optimizers.items()}
        family = cls(coarse_g, coarse_d, gens, discs, factories, latent_dim, loss,
                     noise=str(cfg.train.noise))
        family.check_shapes(tuple(datamodule.data_shape))
        family.total_iterations = int(cfg.train.iterations)
        return family

    def check_shapes(self, data_shape: tuple[int, ...]) -> None:
        """Fail with one line when a player does not fit its level of the pyramid."""
        from ganlab.core.eval_mode import evaluating

        gen = torch.Generator().manual_seed(0)
        with evaluating(*self.networks().values()), torch.no_grad():
            pyramid = gaussian_pyramid(torch.zeros(2, *data_shape), self.levels)
            for level in range(self.levels + 1):
                where = "coarse" if level == self.levels else "residual"
                real, condition = self.level_data(pyramid, level)
                try:
                    fake = self.generate(level, self.sample_z(level, 2, gen), condition)
                except Exception as exc:  # a mis-sized network fails inside torch
                    raise GanlabError(f"model.{where}.generator fails at level {level}: "
                                      f"{' '.join(str(exc).split())}") from None
                if fake.shape != real.shape:
                    raise GanlabError(
                        f"model.{where}.generator makes {tuple(fake.shape[1:])} at level "
                        f"{level}, where the pyramid has {tuple(real.shape[1:])}"
                    )
                try:
                    logits = self.discriminate(level, fake, condition)
                except Exception as exc:
                    raise GanlabError(f"model.{where}.discriminator fails at level {level}: "
                                      f"{' '.join(str(exc).split())}") from None
                if logits.shape != (2,):
                    raise GanlabError(
                        f"model.{where}.discriminator must return one logit per sample, got "
                        f"shape {tuple(logits.shape)} at level {level}"
                    )

    # -- the family interface -------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        """``generator_k`` and ``discriminator_k`` for ``k = K .. 0``."""
        out: dict[str, nn.Module] = {}
        for k in reversed(range(self.levels + 1)):
            out[f"generator_{k}"] = self.generators[k]
            out[f"discriminator_{k}"] = self.discriminators[k]
        return out

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        """``discriminator_k`` and ``generator_k``, each training its level's player alone."""
        out: dict[str, tuple[OptimizerFactory, list[str]]] = {}
        for k in reversed(range(self.levels + 1)):
            out[f"discriminator_{k}"] = (self.factories["discriminator"], [f"discriminator_{k}"])
            out[f"generator_{k}"] = (self.factories["generator"], [f"generator_{k}"])
        return out

    @property
    def evaluated(self) -> nn.Module:
        """The chain of generators (:class:`~ganlab.nets.lapgan.LaplacianSampler`)."""
        return self.sampler

    def _draw(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        if self.noise == "uniform":
            return torch.rand(shape, generator=generator, device=generator.device) * 2 - 1
        return torch.randn(shape, generator=generator, device=generator.device)

    def sample_z(self, level: int, n: int, generator: torch.Generator) -> Tensor:
        """``n`` draws of ``z_level``: ``(n, latent_dim)`` at the coarsest level, else noise
        planes ``(n, noise_channels, H_k, W_k)``."""
        if level == self.levels:
            return self._draw((n, self.latent_dim), generator)
        return self._draw((n, *self.generators[level].noise_shape), generator)

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` flat latents ``cat(z_K, z_{K-1}, ..., z_0)`` of :attr:`LaplacianSampler.
        latent_dim` columns, one draw from ``generator``."""
        return self._draw((n, self.sampler.latent_dim), generator)

    def tags(self) -> list[str]:
        return [*super().tags(), f"levels={self.levels}", f"loss={self.loss.name}"]

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of every player and in all."""
        counts = {role: parameter_count(net) for role, net in self.networks().items()}
        return {**counts, "total": sum(counts.values())}

    # -- one iteration --------------------------------------------------------------------
    def generate(self, level: int, z: Tensor, condition: Tensor | None) -> Tensor:
        """``G_K(z_K)`` at the coarsest level, ``G_k(z_k, l_k)`` below."""
        g = self.generators[level]
        return g(z) if level == self.levels else g(z, condition)

    def discriminate(self, level: int, x: Tensor, condition: Tensor | None) -> Tensor:
        """``D_K(I)`` at the coarsest level, ``D_k(h, l_k)`` below."""
        d = self.discriminators[level]
        return d(x) if level == self.levels else d(x, condition)

    def level_data(self, pyramid: Sequence[Tensor], level: int) -> tuple[Tensor, Tensor | None]:
        """Real ``(h_k, l_k)`` of a Gaussian pyramid (``(I_K, None)`` at the coarsest level)."""
        if level == self.levels:
            return pyramid[level], None
        condition = up(pyramid[level + 1])
        return pyramid[level] - condition, condition

    def draw(self, level: int, n: int, ctx: TrainContext) -> Tensor:
        """This process's ``n`` rows of a global batch of ``z_level`` from the run's noise."""
        return ctx.local_rows(self.sample_z(level, ctx.world_size * n, ctx.noise))

    def discriminator_step(self, level: int, real: Tensor, condition: Tensor | None,
                           ctx: TrainContext) -> dict[str, Tensor]:
        """One step of ``discriminator_k``: real ``h_k`` against ``G_k``'s fresh fakes."""
        with torch.no_grad():
            fake = self.generate(level, self.draw(level, real.shape[0], ctx).to(real),
                                 condition)
        real_logits = self.discriminate(level, real, condition)
        fake_logits = self.discriminate(level, fake, condition)
        cost = self.loss.d_loss(real_logits, fake_logits)
        ctx.update(f"discriminator_{level}", cost)
        return {f"d_loss_{level}": cost.detach(),
                f"D_real_{level}": torch.sigmoid(real_logits.detach()).mean(),
                f"D_fake_{level}": torch.sigmoid(fake_logits.detach()).mean()}

    def generator_step(self, level: int, n: int, condition: Tensor | None, ctx: TrainContext,
                       like: Tensor) -> Tensor:
        """One step of ``generator_k`` on the run's generator cost; ``D_k`` takes no
        gradient."""
        d = self.discriminators[level]
        fake = self.generate(level, self.draw(level, n, ctx).to(like), condition)
        d.requires_grad_(False)
        try:
            cost = self.loss.g_loss(self.discriminate(level, fake, condition))
            ctx.update(f"generator_{level}", cost)
        finally:
            d.requires_grad_(True)
        return cost.detach()

    def train_level(self, level: int, pyramid: Sequence[Tensor], ctx: TrainContext
                    ) -> dict[str, Tensor]:
        """The D step then the G step of one level, on the real pyramid's ``(h_k, l_k)``."""
        real, condition = self.level_data(pyramid, level)
        out = self.discriminator_step(level, real, condition, ctx)
        out[f"g_loss_{level}"] = self.generator_step(level, real.shape[0], condition, ctx, real)
        return out

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """Every level, coarse to fine, on the pyramid of ``batch``'s minibatch; ``d_loss`` and
        ``g_loss`` are the means of the levels' costs (for the progress bar)."""
        xs, _ = batch
        pyramid = gaussian_pyramid(xs[0], self.levels)
        out: dict[str, Tensor] = {}
        for level in reversed(range(self.levels + 1)):
            out.update(self.train_level(level, pyramid, ctx))
        levels = range(self.levels + 1)
        out["d_loss"] = torch.stack([out[f"d_loss_{k}"] for k in levels]).mean()
        out["g_loss"] = torch.stack([out[f"g_loss_{k}"] for k in levels]).mean()
        return out

    # -- pictures -------------------------------------------------------------------------
    @torch.no_grad()
    def level_picture(self, latent: Tensor) -> tuple[Tensor, int]:
        """Samples built level by level, one row each: ``Ĩ_K``, then for every finer level
        ``u(Ĩ_{k+1})``, ``h̃_k`` and ``Ĩ_k``; every image resized (nearest) to the finest side,
        residuals scaled by ``1 / max |h̃_k|`` of the picture's level (0 stays grey)."""
        steps = self.sampler.levels(latent)
        side = tuple(steps[-1]["image"].shape[-2:])

        def show(x: Tensor) -> Tensor:
            return nn.functional.interpolate(x, size=side, mode="nearest").clamp(-1, 1)

        columns = [show(steps[0]["image"])]
        for step in steps[1:]:
            residual = step["residual"]
            scale = residual.abs().max().clamp_min(1e-12)
            columns += [show(step["condition"]), show(residual / scale), show(step["image"])]
        grid = torch.stack(columns, 1)
        return grid.reshape(-1, *grid.shape[2:]), len(columns)

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """``pyramid``: :data:`PYRAMID_ROWS` samples (noise seed ``SAMPLE_SEED``) built level by
        level (:meth:`level_picture`), in eval mode. The run's ``samples`` grid (the adapter's)
        shows the pyramid's final samples."""
        from ganlab.core.eval_mode import evaluating

        device = sampler.device
        gen = torch.Generator(device=device).manual_seed(SAMPLE_SEED)
        latent = self.sample_latent(PYRAMID_ROWS, gen)
        with evaluating(self.sampler):
            images, per_row = self.level_picture(latent)
        return {"pyramid": (images.cpu(), per_row)}


__all__ = ["LAPGAN", "parameter_count"]
