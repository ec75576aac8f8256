"""The variational autoencoder (Kingma & Welling 2014, "Auto-Encoding Variational Bayes"), the
baseline of adversarial variational Bayes (:mod:`ganlab.families.avb`) with the same decoder
and likelihood.

Players: a Gaussian encoder ``q(z|x) = N(μ(x), diag σ²(x))`` (one network whose ``2 code_dim``
outputs are ``μ`` and ``log σ²``) and a decoder of Bernoulli logits ``p(x|z)``
(:func:`ganlab.families.autoencoding.bernoulli_log_likelihood`); the prior is
``p(z) = N(0, s² I)``. One iteration (= one call of :meth:`VAE.train_step`, on one real
minibatch ``x``): the optimizer ``autoencoder`` (encoder + decoder) takes one step on the
negative SGVB estimate of the ELBO with the KL in closed form (eq. 10),
``mean over the batch of KL(q(z|x) || p(z)) - log p(x|z)``, ``z = μ + σ ε`` with one
``ε ~ N(0, I)`` per image from the run's noise generator (the reparameterisation, eq. 4), where
``KL = 1/2 sum_j (σ_j² + μ_j²) / s² - 1 - log σ_j² + log s²`` (App. B, for ``s = 1``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.family import Batch, TrainContext
from ganlab.core.players import OptimizerFactory
from ganlab.data.priors import Normal, Prior
from ganlab.families.autoencoding import (
    BernoulliAutoencoder,
    bernoulli_log_likelihood,
    gaussian_noise,
    read_config,
)


class VAE(BernoulliAutoencoder):
    """``model=vae``.

    Args:
        encoder: ``x (B, *data_shape) -> (μ, log σ²) (B, 2 code_dim)``.
        decoder: ``z (B, code_dim) -> logits (B, *data_shape)``.
        prior: ``N(0, s² I)`` (:class:`ganlab.data.priors.Normal`).
        optimizers: the factory of the optimizer ``autoencoder``.
        elbo_samples: ``z ~ q(z|x)`` per held-out image in the ELBO's likelihood term.
        num_reconstructions: real images shown with their reconstructions.
        marginal_samples: prior samples of the held-out ``log p(x)`` estimate (0: off).
    """

    name: ClassVar[str] = "vae"
    kl_rule = "KL(q(z|x) || p(z)) of the two Gaussians in closed form (eq. 10)"

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        prior: Prior,
        optimizers: dict[str, OptimizerFactory],
        elbo_samples: int = 10,
        num_reconstructions: int = 40,
        marginal_samples: int = 0,
    ) -> None:
        if "autoencoder" not in optimizers:
            raise GanlabError("model=vae: no optimizer for autoencoder")
        if not isinstance(prior, Normal):
            raise GanlabError(f"model=vae needs model/prior=normal (its KL is in closed form); "
                              f"got model.prior {prior.name}")
        self.encoder, self.decoder, self.prior = encoder, decoder, prior
        self.factories = dict(optimizers)
        self.elbo_samples = int(elbo_samples)
        self.marginal_samples = int(marginal_samples)
        self.num_reconstructions = int(num_reconstructions)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Callable[..., Any]) -> VAE:
        """The family of ``cfg.model`` for the data of ``datamodule`` (set up), each node
        built by ``build(node, what, **kwargs)``."""
        m = cfg.model
        data_shape, code_dim, prior = read_config(cfg, datamodule, build)
        cls.check_common(cls.name, data_shape, prior, code_dim,
                         str(m.decoder.get("output", "linear")), int(m.elbo_samples),
                         int(m.marginal_samples))
        encoder = build(m.encoder, "model.encoder", data_shape=list(data_shape),
                        code_dim=2 * code_dim)
        decoder = build(m.decoder, "model.decoder", latent_dim=code_dim,
                        data_shape=list(data_shape), output="linear")
        factories = {name: build(node, f"model.optimizers.{name}")
                     for name, node in m.optimizers.items()}
        return cls(encoder, decoder, prior, factories, elbo_samples=int(m.elbo_samples),
                   marginal_samples=int(m.marginal_samples),
                   num_reconstructions=int(m.get("num_reconstructions", 40)))

    # -- the family interface -------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        return {"autoencoder": (self.factories["autoencoder"], ["encoder", "decoder"])}

    @property
    def noise_dim(self) -> int:
        return self.prior.dim

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(μ(x), log σ²(x))``, each ``(B, code_dim)``."""
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var

    def draw_codes(self, x: Tensor, noise: Tensor) -> Tensor:
        """``z = μ(x) + σ(x) ε``."""
        mean, log_var = self.posterior(x)
        return mean + torch.exp(0.5 * log_var) * noise

    def kl(self, mean: Tensor, log_var: Tensor) -> Tensor:
        """``KL(N(μ, diag σ²) || N(0, s² I))`` per row ``(B,)``."""
        s2 = self.prior.std ** 2
        return 0.5 * ((log_var.exp() + mean.pow(2)) / s2 - 1 - log_var + torch.log(
            torch.tensor(s2, dtype=mean.dtype, device=mean.device))).sum(1)

    def kl_terms(self, x: Tensor, z: Tensor) -> Tensor:
        """The closed-form KL of ``q(·|x)`` (the same for every ``z``)."""
        return self.kl(*self.posterior(x))

    # -- one iteration --------------------------------------------------------------------
    def autoencoder_phase(self, x: Tensor, eps: Tensor, ctx: TrainContext) -> dict[str, Tensor]:
        """One step of encoder + decoder on ``E[KL(q(z|x) || p(z)) - log p(x|z)]``,
        ``z = μ + σ ε``."""
        mean, log_var = self.posterior(x)
        z = mean + torch.exp(0.5 * log_var) * eps
        kl = self.kl(mean, log_var)
        log_lik = bernoulli_log_likelihood(self.decoder(z), x)
        cost = (kl - log_lik).mean()
        ctx.update("autoencoder", cost)
        return {"neg_elbo": cost.detach(), "log_likelihood": log_lik.detach().mean(),
                "kl": kl.detach().mean()}

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """One ``ε`` per image from the run's noise generator, then the autoencoder phase."""
        x = batch[0][0]
        eps = gaussian_noise(x.shape[0], self.noise_dim, ctx).to(x)
        return self.autoencoder_phase(x, eps, ctx)


__all__ = ["VAE"]
