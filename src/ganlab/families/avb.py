"""Adversarial variational Bayes (Mescheder, Nowozin & Geiger 2017, "Adversarial Variational
Bayes: Unifying Variational Autoencoders and Generative Adversarial Networks"; GAN_SPEC §7).

Players: an implicit encoder ``z = enc(x, ε)``, ``ε ~ N(0, I)`` (a black-box ``q(z|x)``: the
encoder reads ``x`` and ``ε`` side by side), a decoder of Bernoulli logits ``p(x|z)``
(:func:`ganlab.families.autoencoding.bernoulli_log_likelihood`) and a discriminator ``T(x, z)``
reading ``x`` and ``z`` side by side. One iteration (= one call of :meth:`AVB.train_step`, on
one real minibatch ``x``, with one draw of ``ε`` and of prior codes ``z_p ~ p(z)`` from the
run's noise generator) is the paper's Algorithm 1, its two updates taken one after the other:

1. discriminator phase: the optimizer ``discriminator`` (``T`` only) takes one step on the
   logistic cost of eq. 3.3, ``J_T = E softplus(-T(x, enc(x, ε))) + E softplus(T(x, z_p))``
   (``σ(T)`` says "from ``q``"); its optimum is ``T*(x, z) = log q(z|x) - log p(z)`` (Prop. 1);
2. autoencoder phase: the optimizer ``autoencoder`` (encoder + decoder) takes one step on
   ``-ELBO`` with ``T`` in place of the log-ratio (eq. 3.7), the batch mean of
   ``T(x, z) - log p(x|z)``, ``z = enc(x, ε)`` with the same ``ε``; ``T``'s gradient reaches
   the encoder through ``z`` (eq. 3.8), ``T`` itself is not stepped.

Algorithm 1 takes both updates from the same parameters at once; here the autoencoder phase
sees the ``T`` that phase 1 has just stepped (as the other families' phases do). The paper's
adaptive contrast (§4) is not implemented. Samples are the decoder's mean image of
``z ~ p(z)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.functional import softplus

from ganlab.core.errors import GanlabError
from ganlab.core.family import Batch, TrainContext
from ganlab.core.players import OptimizerFactory
from ganlab.data.priors import Prior
from ganlab.families.autoencoding import (
    BernoulliAutoencoder,
    bernoulli_log_likelihood,
    gaussian_noise,
    joint,
    read_config,
)


class AVB(BernoulliAutoencoder):
    """``model=avb``.

    Args:
        encoder: ``(B, prod(data_shape) + noise_dim) -> z (B, code_dim)``: reads
            :func:`~ganlab.families.autoencoding.joint` ``(x, ε)``.
        decoder: ``z (B, code_dim) -> logits (B, *data_shape)``.
        discriminator: ``(B, prod(data_shape) + code_dim) -> T (B,)``: reads ``joint(x, z)``.
        prior: the prior ``p(z)`` (only sampled: ``T`` learns its density ratio).
        optimizers: factories of the optimizers ``discriminator`` and ``autoencoder``.
        noise_dim: width of ``ε``.
        elbo_samples: ``z ~ q(z|x)`` per held-out image in the ELBO estimate.
        num_reconstructions: real images shown with their reconstructions.
        marginal_samples: prior samples of the held-out ``log p(x)`` estimate (0: off).
    """

    name: ClassVar[str] = "avb"
    kl_rule = "T(x, z): the trained discriminator's estimate of log q(z|x) - log p(z) (eq. 3.7)"

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        discriminator: nn.Module,
        prior: Prior,
        optimizers: dict[str, OptimizerFactory],
        noise_dim: int,
        elbo_samples: int = 10,
        num_reconstructions: int = 40,
        marginal_samples: int = 0,
    ) -> None:
        missing = {"discriminator", "autoencoder"} - set(optimizers)
        if missing:
            raise GanlabError(f"model=avb: no optimizer for {', '.join(sorted(missing))}")
        if noise_dim < 1:
            raise GanlabError(f"model.noise_dim must be >= 1; got {noise_dim}")
        self.encoder, self.decoder, self.discriminator = encoder, decoder, discriminator
        self.prior = prior
        self.factories = dict(optimizers)
        self._noise_dim = int(noise_dim)
        self.elbo_samples = int(elbo_samples)
        self.marginal_samples = int(marginal_samples)
        self.num_reconstructions = int(num_reconstructions)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Callable[..., Any]) -> AVB:
        """The family of ``cfg.model`` for the data of ``datamodule`` (set up), each node
        built by ``build(node, what, **kwargs)``."""
        m = cfg.model
        data_shape, code_dim, prior = read_config(cfg, datamodule, build)
        noise_dim = int(m.noise_dim)
        cls.check_common(cls.name, data_shape, prior, code_dim,
                         str(m.decoder.get("output", "linear")), int(m.elbo_samples),
                         int(m.marginal_samples))
        width = int(torch.tensor(data_shape).prod())
        encoder = build(m.encoder, "model.encoder", data_shape=[width + noise_dim],
                        code_dim=code_dim)
        decoder = build(m.decoder, "model.decoder", latent_dim=code_dim,
                        data_shape=list(data_shape), output="linear")
        discriminator = build(m.discriminator, "model.discriminator",
                              data_shape=[width + code_dim])
        factories = {name: build(node, f"model.optimizers.{name}")
                     for name, node in m.optimizers.items()}
        return cls(encoder, decoder, discriminator, prior, factories, noise_dim=noise_dim,
                   elbo_samples=int(m.elbo_samples),
                   marginal_samples=int(m.marginal_samples),
                   num_reconstructions=int(m.get("num_reconstructions", 40)))

    # -- the family interface -------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder,
                "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        return {
            "discriminator": (self.factories["discriminator"], ["discriminator"]),
            "autoencoder": (self.factories["autoencoder"], ["encoder", "decoder"]),
        }

    @property
    def noise_dim(self) -> int:
        return self._noise_dim

    def draw_codes(self, x: Tensor, noise: Tensor) -> Tensor:
        """``z = enc(x, ε)``."""
        return self.encoder(joint(x, noise))

    def t(self, x: Tensor, z: Tensor) -> Tensor:
        """``T(x, z)`` ``(B,)``."""
        return self.discriminator(joint(x, z))

    def kl_terms(self, x: Tensor, z: Tensor) -> Tensor:
        """``T(x, z)``: the estimate of ``log q(z|x) - log p(z)``."""
        return self.t(x, z)

    # -- one iteration --------------------------------------------------------------------
    def discriminator_cost(self, x: Tensor, z_q: Tensor, z_p: Tensor
                           ) -> tuple[Tensor, Tensor, Tensor]:
        """``J_T = E softplus(-T(x, z_q)) + E softplus(T(x, z_p))`` (eq. 3.3), with ``T`` on
        both kinds of pair."""
        t_q, t_p = self.t(x, z_q), self.t(x, z_p)
        return softplus(-t_q).mean() + softplus(t_p).mean(), t_q, t_p

    def discriminator_phase(self, x: Tensor, eps: Tensor, z_p: Tensor, ctx: TrainContext
                            ) -> dict[str, Tensor]:
        """Phase 1: one step of ``T`` telling ``(x, enc(x, ε))`` from ``(x, z_p)``."""
        with torch.no_grad():
            z_q = self.draw_codes(x, eps)
        cost, t_q, t_p = self.discriminator_cost(x, z_q, z_p.to(z_q))
        ctx.update("discriminator", cost)
        return {"t_loss": cost.detach(), "T_q": t_q.detach().mean(),
                "T_prior": t_p.detach().mean()}

    def autoencoder_phase(self, x: Tensor, eps: Tensor, ctx: TrainContext) -> dict[str, Tensor]:
        """Phase 2: one step of encoder + decoder on ``E[T(x, z) - log p(x|z)]``,
        ``z = enc(x, ε)``."""
        z = self.draw_codes(x, eps)
        kl = self.t(x, z)
        log_lik = bernoulli_log_likelihood(self.decoder(z), x)
        cost = (kl - log_lik).mean()
        ctx.update("autoencoder", cost)
        return {"neg_elbo": cost.detach(), "log_likelihood": log_lik.detach().mean(),
                "kl_T": kl.detach().mean()}

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """``ε`` and ``z_p ~ p(z)`` drawn once, then the discriminator phase and the
        autoencoder phase on ``batch``'s minibatch."""
        x = batch[0][0]
        eps = gaussian_noise(x.shape[0], self.noise_dim, ctx).to(x)
        z_p = ctx.local_rows(self.prior.sample(ctx.world_size * x.shape[0], ctx.noise)).to(x)
        out = self.discriminator_phase(x, eps, z_p, ctx)
        out.update(self.autoencoder_phase(x, eps, ctx))
        return out


__all__ = ["AVB"]
