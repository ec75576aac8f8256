"""The adversarial autoencoder (Makhzani, Shlens, Jaitly, Goodfellow & Frey 2015, "Adversarial
Autoencoders"; GAN_SPEC §7).

Players: a deterministic encoder ``q(z|x)`` (``z = enc(x)``, the paper's main variant), a
decoder ``p(x|z)`` and a discriminator ``D`` on codes. One iteration (= one call of
:meth:`AAE.train_step`, on one real minibatch ``x``) is the paper's §2:

1. reconstruction phase: the optimizer ``reconstruction`` (encoder + decoder) takes one step on
   ``J_rec = mean over the batch and the pixels of (x - dec(enc(x)))²``;
2. regularisation phase: the optimizer ``discriminator`` takes one step on the cross-entropy
   cost of telling prior samples ``z ~ p(z)`` (real) from codes ``enc(x)`` (fake),
   ``J_D = 1/2 E softplus(-D(z)) + 1/2 E softplus(D(enc(x)))``; then the optimizer
   ``generator`` (encoder only) takes one step on the non-saturating cost
   ``J_G = 1/2 E softplus(-D(enc(x)))`` (:class:`ganlab.losses.NonSaturating`).

Each phase sees the networks as the previous one left them. With a label-conditioned prior
(:class:`ganlab.data.priors.LabelMixture`, §2.3) ``D`` also reads a one-hot label: the image's
label next to its code, the drawn component next to a prior sample. Prior samples are drawn
from the run's checkpointed noise generator, so a resumed run is exact. Samples are
``dec(z)``, ``z ~ p(z)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.core.family import Batch, Family, TrainContext
from ganlab.core.players import OptimizerFactory
from ganlab.core.seeds import EVAL_SEED, RECONSTRUCTION_SEED
from ganlab.data.priors import Prior, one_hot
from ganlab.families.autoencoding import (
    SCATTER_PRIOR_SAMPLES,
    autoencoder_pictures,
    held_out_images,
    held_out_sample,
    read_config,
)
from ganlab.losses import GANLoss, NonSaturating
from ganlab.metrics.mmd import median_distance, mmd2_unbiased

#: Prior samples that fix the median-heuristic bandwidth of the MMD (drawn on the CPU from
#: EVAL_SEED: the same bandwidth for every run with the same prior).
BANDWIDTH_SAMPLES = 1000
class AAE(Family):
    """``model=aae``.

    Args:
        encoder: ``x (B, *data_shape) -> z (B, code_dim)``.
        decoder: ``z (B, code_dim) -> x (B, *data_shape)``.
        discriminator: ``(B, code_dim + prior.num_classes) -> logits (B,)``.
        prior: the prior ``p(z)`` of the codes.
        optimizers: factories of the optimizers ``reconstruction``, ``discriminator`` and
            ``generator``.
        loss: the adversarial costs (non-saturating cross-entropy by default).
        mmd_bandwidth: ``σ`` of the MMD's Gaussian kernel; ``None``: the median pairwise
            distance of :data:`BANDWIDTH_SAMPLES` prior samples.
        num_reconstructions: real images shown with their reconstructions.
    """

    name: ClassVar[str] = "aae"
    #: ``model.metrics``: it measures its own held-out reconstruction error and MMD
    #: (:meth:`metrics`), so the generic reconstruction metric does not run.
    provides = frozenset({"model.encode", "model.metrics"})

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        discriminator: nn.Module,
        prior: Prior,
        optimizers: dict[str, OptimizerFactory],
        loss: GANLoss | None = None,
        mmd_bandwidth: float | None = None,
        num_reconstructions: int = 40,
    ) -> None:
        missing = {"reconstruction", "discriminator", "generator"} - set(optimizers)
        if missing:
            raise GanlabError(f"model=aae: no optimizer for {', '.join(sorted(missing))}")
        if mmd_bandwidth is not None and not mmd_bandwidth > 0:
            raise GanlabError(f"model.mmd_bandwidth must be > 0 or null; got {mmd_bandwidth}")
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.prior = prior
        self.factories = dict(optimizers)
        self.loss = loss if loss is not None else NonSaturating()
        self.mmd_bandwidth = None if mmd_bandwidth is None else float(mmd_bandwidth)
        self.num_reconstructions = int(num_reconstructions)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Callable[..., Any]) -> AAE:
        """The family of ``cfg.model`` for the data of ``datamodule`` (set up), each node
        built by ``build(node, what, **kwargs)``."""
        m = cfg.model
        data_shape, code_dim, prior = read_config(cfg, datamodule, build)
        if prior.dim != code_dim:
            raise GanlabError(
                f"model.prior {prior.name} draws {prior.dim}-D codes but model.code_dim is "
                f"{code_dim}"
            )
        if prior.num_classes and prior.num_classes != datamodule.num_classes:
            raise GanlabError(
                f"model.prior {prior.name} has {prior.num_classes} classes but the data has "
                f"{datamodule.num_classes}"
            )
        output = m.decoder.get("output", "auto")
        if output == "auto":
            output = "tanh" if len(data_shape) == 3 else "linear"
        encoder = build(m.encoder, "model.encoder", data_shape=list(data_shape),
                        code_dim=code_dim)
        decoder = build(m.decoder, "model.decoder", latent_dim=code_dim,
                        data_shape=list(data_shape), output=output)
        discriminator = build(m.discriminator, "model.discriminator",
                              data_shape=[code_dim + prior.num_classes])
        factories = {name: build(node, f"model.optimizers.{name}")
                     for name, node in m.optimizers.items()}
        return cls(encoder, decoder, discriminator, prior, factories,
                   mmd_bandwidth=m.get("mmd_bandwidth"),
                   num_reconstructions=int(m.get("num_reconstructions", 40)))

    # -- the family interface -------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder,
                "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        return {
            "reconstruction": (self.factories["reconstruction"], ["encoder", "decoder"]),
            "discriminator": (self.factories["discriminator"], ["discriminator"]),
            "generator": (self.factories["generator"], ["encoder"]),
        }

    @property
    def evaluated(self) -> nn.Module:
        return self.decoder

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` codes of the prior (its marginal when label-conditioned)."""
        return self.prior.sample(n, generator)

    def encode(self, x: Tensor) -> Tensor:
        """``enc(x)``."""
        return self.encoder(x)

    def reconstruct(self, x: Tensor) -> Tensor:
        """``dec(enc(x))``."""
        return self.decoder(self.encoder(x))

    # -- one iteration --------------------------------------------------------------------
    def d_input(self, z: Tensor, labels: Tensor | None) -> Tensor:
        """What D reads: the code, and for a label-conditioned prior the one-hot label."""
        if not self.prior.num_classes:
            return z
        if labels is None:
            raise GanlabError(f"model.prior {self.prior.name} needs labelled data")
        return torch.cat([z, one_hot(labels.to(z.device), self.prior.num_classes, z.dtype)], 1)

    def draw_prior(self, n: int, ctx: TrainContext) -> tuple[Tensor, Tensor | None]:
        """This process's ``n`` rows of a global batch of prior samples (and their
        components), drawn from the run's noise generator."""
        total = ctx.world_size * n
        if self.prior.num_classes:
            z, components = self.prior.sample_labelled(total, ctx.noise)
            return ctx.local_rows(z), ctx.local_rows(components)
        return ctx.local_rows(self.prior.sample(total, ctx.noise)), None

    def reconstruction_cost(self, x: Tensor) -> Tensor:
        """``J_rec``: the mean over the batch and every pixel of ``(x - dec(enc(x)))²``."""
        return (self.reconstruct(x) - x).pow(2).mean()

    def reconstruction_phase(self, x: Tensor, ctx: TrainContext) -> Tensor:
        """Phase 1: one step of encoder + decoder on ``J_rec``."""
        cost = self.reconstruction_cost(x)
        ctx.update("reconstruction", cost)
        return cost.detach()

    def discriminator_phase(self, x: Tensor, labels: Tensor | None, ctx: TrainContext
                            ) -> dict[str, Tensor]:
        """Phase 2a: one step of D telling prior samples (real) from codes (fake)."""
        prior_z, components = self.draw_prior(x.shape[0], ctx)
        with torch.no_grad():
            codes = self.encoder(x)
        prior_logits = self.discriminator(self.d_input(prior_z.to(codes), components))
        code_logits = self.discriminator(self.d_input(codes, labels))
        cost = self.loss.d_loss(prior_logits, code_logits)
        ctx.update("discriminator", cost)
        return {"d_loss": cost.detach(),
                "D_prior": torch.sigmoid(prior_logits.detach()).mean(),
                "D_code": torch.sigmoid(code_logits.detach()).mean()}

    def generator_phase(self, x: Tensor, labels: Tensor | None, ctx: TrainContext) -> Tensor:
        """Phase 2b: one step of the encoder on the generator cost of its codes."""
        cost = self.loss.g_loss(self.discriminator(self.d_input(self.encoder(x), labels)))
        ctx.update("generator", cost)
        return cost.detach()

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """Reconstruction phase, then the regularisation phase, on ``batch``'s minibatch."""
        xs, ys = batch
        x, labels = xs[0], ys[0]
        out = {"reconstruction": self.reconstruction_phase(x, ctx)}
        out.update(self.discriminator_phase(x, labels, ctx))
        out["g_loss"] = self.generator_phase(x, labels, ctx)
        return out

    # -- evaluation -----------------------------------------------------------------------
    def bandwidth(self) -> float:
        """``σ`` of the MMD's kernel: fixed, or the median heuristic on prior samples."""
        if self.mmd_bandwidth is not None:
            return self.mmd_bandwidth
        gen = torch.Generator().manual_seed(EVAL_SEED)
        return median_distance(self.prior.sample(BANDWIDTH_SAMPLES, gen))

    @torch.no_grad()
    def _codes(self, x: Tensor, device: torch.device | str, batch_size: int = 1000
               ) -> tuple[Tensor, Tensor]:
        """``enc(x)`` and ``dec(enc(x))`` in eval mode, on ``device``."""
        codes, recs = [], []
        with evaluating(self.encoder, self.decoder):
            for part in x.split(batch_size):
                z = self.encoder(part.to(device))
                codes.append(z)
                recs.append(self.decoder(z))
        return torch.cat(codes), torch.cat(recs)

    def _held_out(self, datamodule: Any, n: int) -> tuple[Tensor, Tensor, str]:
        """``n`` (at most all) held-out images in [-1, 1], their labels, their description,
        chosen by :data:`RECONSTRUCTION_SEED`."""
        return held_out_sample(datamodule, n, self.name)

    def metrics(self, datamodule: Any, num_samples: int, device: torch.device | str
                ) -> dict[str, float]:
        """``reconstruction_mse``: mean over up to ``num_samples`` held-out images and their
        pixels of ``(x - dec(enc(x)))²``; ``mmd2_posterior_prior``: the unbiased MMD² between
        their codes (the aggregated posterior) and ``num_samples`` prior samples
        (:meth:`protocol` for the kernel)."""
        x, _, source = self._held_out(datamodule, num_samples)
        codes, rec = self._codes(x, device)
        prior = self.prior.sample(num_samples, torch.Generator().manual_seed(EVAL_SEED))
        mmd2 = mmd2_unbiased(codes.cpu(), prior, self.bandwidth())
        self._last = {"held_out": source, "num_held_out": len(x),
                      "num_prior_samples": int(num_samples)}
        return {"reconstruction_mse": float((rec.cpu() - x).pow(2).mean()),
                "mmd2_posterior_prior": mmd2}

    def protocol(self) -> dict[str, Any]:
        """How :meth:`metrics` measures (with the counts of its last call)."""
        return {
            "reconstruction": "mean over held-out images and pixels (in [-1, 1]) of "
                              "(x - dec(enc(x)))^2",
            "mmd": "unbiased MMD^2 (Gretton et al. 2012, eq. 3) between enc(x) of the "
                   "held-out images and prior samples",
            "mmd_kernel": "gaussian: exp(-|a - b|^2 / (2 bandwidth^2))",
            "mmd_bandwidth": self.bandwidth(),
            "mmd_bandwidth_rule": "fixed (model.mmd_bandwidth)" if self.mmd_bandwidth else
                                  f"median pairwise distance of {BANDWIDTH_SAMPLES} prior "
                                  f"samples (seed {EVAL_SEED})",
            "prior": self.prior.describe(),
            "prior_seed": EVAL_SEED,
            "held_out_seed": RECONSTRUCTION_SEED,
            **getattr(self, "_last", {}),
        }

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, Any]:
        """``codes``: for a 2-D code, the scatter of held-out images' codes coloured by label
        over prior samples (uint8 ``(H, W, 3)``); for images, ``prior_samples`` (100
        ``dec(z)``, 10 per row) and ``reconstructions`` (rows of 10 real held-out images, each
        followed by the row of their reconstructions), as ``(images in [-1, 1], per row)``
        (:func:`ganlab.families.autoencoding.autoencoder_pictures`)."""
        device = sampler.device
        return autoencoder_pictures(sampler, datamodule, self.prior,
                                    lambda x: self._codes(x, device)[0],
                                    self.num_reconstructions, self.name)

    def tags(self) -> list[str]:
        return [*super().tags(), f"prior={self.prior.name}"]


__all__ = ["AAE", "SCATTER_PRIOR_SAMPLES", "held_out_images"]
