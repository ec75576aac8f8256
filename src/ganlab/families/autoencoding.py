"""What the autoencoding families (``aae``, ``avb``, ``vae``) share: the held-out images they
measure on and their pictures (the 2-D code scatter, decoded prior samples, reconstructions);
for ``avb`` and ``vae``, the Bernoulli decoder and the held-out ELBO
(:class:`BernoulliAutoencoder`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.core.family import Family, TrainContext
from ganlab.core.seeds import EVAL_SEED, RECONSTRUCTION_SEED, SAMPLE_SEED
from ganlab.data.images import to_unit_range
from ganlab.data.priors import Prior

#: Prior samples drawn under the code scatter.
SCATTER_PRIOR_SAMPLES = 2000
#: Prior samples decoded at once in the estimate of ``log p(x)``.
MARGINAL_CHUNK = 2000


def held_out_images(datamodule: Any, family: str = "aae") -> tuple[Tensor, Tensor, str]:
    """uint8 images, labels and a description of the images no training step saw: the
    datamodule's ``held_out`` share, else the dataset's official test split (``family``: the
    ``model=`` named by the error when there is neither)."""
    images = getattr(datamodule, "held_out_images", None)
    if images is not None:
        return images, datamodule.held_out_labels, (
            f"data.held_out={datamodule.held_out:g} of each class, kept out of training"
        )
    from ganlab.data.images import official_test_split

    test = official_test_split(datamodule)
    if test is not None:
        return test[0], test[1], "the official test split"
    raise GanlabError(
        f"model={family} measures on held-out images, and {type(datamodule).__name__} has "
        "none; set data.held_out (e.g. data.held_out=0.1)"
    )


def held_out_sample(datamodule: Any, n: int, family: str = "aae"
                    ) -> tuple[Tensor, Tensor, str]:
    """``n`` (at most all) held-out images in [-1, 1], their labels, their description,
    chosen by :data:`RECONSTRUCTION_SEED`."""
    images, labels, source = held_out_images(datamodule, family)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(
        RECONSTRUCTION_SEED))[: min(n, len(images))]
    return to_unit_range(images[order]), labels[order], source


def autoencoder_pictures(sampler: Any, datamodule: Any, prior: Prior,
                         codes: Callable[[Tensor], Tensor], num_reconstructions: int,
                         family: str) -> dict[str, Any]:
    """``codes``: for a 2-D code, the scatter of held-out images' codes (``codes(x)``, on
    ``sampler.device``) coloured by label over prior samples (uint8 ``(H, W, 3)``); for images,
    ``prior_samples`` (100 decoded ``z ~ p(z)``, 10 per row) and ``reconstructions`` (rows of
    10 real held-out images, each followed by the row of their decoded codes), as
    ``(images in [-1, 1], per row)``."""
    from ganlab import plots

    device = sampler.device
    out: dict[str, Any] = {}
    if prior.dim == 2:
        x, labels, _ = held_out_sample(datamodule, 10**12, family)
        prior_z = prior.sample(SCATTER_PRIOR_SAMPLES, torch.Generator().manual_seed(SAMPLE_SEED))
        out["codes"] = plots.code_scatter(codes(x), labels, prior_z,
                                          f"codes of {len(x)} held-out images; prior "
                                          f"{prior.name}")
    if len(tuple(datamodule.data_shape)) == 3:
        gen = torch.Generator(device=device).manual_seed(SAMPLE_SEED)
        out["prior_samples"] = (sampler.generate_from(prior.sample(100, gen)), 10)
        cols = 10
        rows = max(num_reconstructions // cols, 1)
        real, _, _ = held_out_sample(datamodule, rows * cols, family)
        rows = len(real) // cols
        real = real[: rows * cols].to(device)
        rec = sampler.generate_from(codes(real))
        pairs = torch.stack([real.view(rows, cols, *real.shape[1:]),
                             rec.view(rows, cols, *rec.shape[1:])], 1)
        out["reconstructions"] = (pairs.reshape(-1, *real.shape[1:]), cols)
    return out




# -- the latent-variable models with a Bernoulli decoder (avb, vae) ------------------------------

def read_config(cfg: Any, datamodule: Any, build: Callable[..., Any]
                ) -> tuple[tuple[int, ...], int, Prior]:
    """What each autoencoder's ``from_config`` reads first: the data shape, ``model.code_dim``
    and the prior ``model.prior`` built."""
    data_shape = tuple(int(s) for s in datamodule.data_shape)
    return data_shape, int(cfg.model.code_dim), build(cfg.model.prior, "model.prior")


def joint(x: Tensor, v: Tensor) -> Tensor:
    """``(B, *shape)`` and ``(B, k)`` -> ``(B, prod(shape) + k)``: the flattened ``x`` next to
    ``v`` (the input of an encoder ``enc(x, ε)`` or of ``T(x, z)``)."""
    return torch.cat([x.flatten(1), v.to(x)], 1)


def bernoulli_log_likelihood(logits: Tensor, x: Tensor) -> Tensor:
    """``log p(x|z)`` per image ``(B,)`` in nats: each pixel of ``x`` in [-1, 1], mapped to
    ``t = (x + 1) / 2`` in [0, 1], is a Bernoulli of mean ``sigmoid(logit)``:
    ``sum_pixels t log σ(l) + (1 - t) log(1 - σ(l))`` (Kingma & Welling 2014, App. C.1)."""
    target = (x + 1) / 2
    return -nn.functional.binary_cross_entropy_with_logits(
        logits, target, reduction="none").flatten(1).sum(1)


def bernoulli_mean(logits: Tensor) -> Tensor:
    """The decoder's mean image in [-1, 1]: ``2 sigmoid(logits) - 1``."""
    return 2 * torch.sigmoid(logits) - 1


def gaussian_noise(n: int, dim: int, ctx: TrainContext) -> Tensor:
    """This process's ``n`` rows of a global batch of ``N(0, I_dim)`` draws from the run's
    noise generator."""
    total = ctx.world_size * n
    return ctx.local_rows(torch.randn(total, dim, generator=ctx.noise, device=ctx.noise.device))


class BernoulliAutoencoder(Family):
    """What the AVB and the VAE share: a decoder of Bernoulli logits (samples and
    reconstructions are its mean image), a prior ``p(z)``, the held-out ELBO, reconstruction
    error and pictures. A subclass says how it draws ``z ~ q(z|x)`` (:meth:`draw_codes`) and
    how it estimates the ELBO's KL term (:meth:`kl_terms`)."""

    provides = frozenset({"model.encode", "model.metrics"})
    encoder: nn.Module
    decoder: nn.Module
    prior: Prior
    #: ``z ~ q(z|x)`` per held-out image in the ELBO estimate.
    elbo_samples: int
    #: Prior samples of the estimate of ``log p(x)`` (0: not measured).
    marginal_samples: int = 0
    num_reconstructions: int
    #: How the KL term of the ELBO is estimated (for the protocol).
    kl_rule: str = ""

    @staticmethod
    def check_common(name: str, data_shape: tuple[int, ...], prior: Prior, code_dim: int,
                     decoder_output: str, elbo_samples: int, marginal_samples: int = 0
                     ) -> None:
        """One-line errors for what both families need of their config."""
        if len(data_shape) != 3:
            raise GanlabError(
                f"model={name} models pixels in [-1, 1] with a Bernoulli decoder: it needs "
                f"image data (C, H, W); got data shape {data_shape}")
        if prior.dim != code_dim:
            raise GanlabError(f"model.prior {prior.name} draws {prior.dim}-D codes but "
                              f"model.code_dim is {code_dim}")
        if prior.num_classes:
            raise GanlabError(f"model={name} has no label-conditioned prior; got "
                              f"model.prior {prior.name}")
        if decoder_output != "linear":
            raise GanlabError(f"model.decoder.output must be linear (the decoder gives "
                              f"Bernoulli logits); got {decoder_output!r}")
        if elbo_samples < 1:
            raise GanlabError(f"model.elbo_samples must be >= 1; got {elbo_samples}")
        if marginal_samples < 0:
            raise GanlabError(f"model.marginal_samples must be >= 0; got {marginal_samples}")

    # -- the family interface -------------------------------------------------------------
    @property
    def evaluated(self) -> nn.Module:
        return self.decoder

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` codes of the prior."""
        return self.prior.sample(n, generator)

    def decode(self, latent: Tensor) -> Tensor:
        """The mean image ``2 sigmoid(dec(z)) - 1`` of ``p(x|z)``."""
        return bernoulli_mean(self.decoder(latent))

    def tags(self) -> list[str]:
        return [*super().tags(), f"prior={self.prior.name}"]

    # -- what a subclass says -------------------------------------------------------------
    def draw_codes(self, x: Tensor, noise: Tensor) -> Tensor:
        """``z ~ q(z|x)`` per row of ``x`` from the standard normal ``noise``
        ``(B, noise_dim)``."""
        raise NotImplementedError

    @property
    def noise_dim(self) -> int:
        """Width of the standard normal noise :meth:`draw_codes` reads."""
        raise NotImplementedError

    def kl_terms(self, x: Tensor, z: Tensor) -> Tensor:
        """The ELBO's KL term per row ``(B,)`` for codes ``z ~ q(z|x)``."""
        raise NotImplementedError

    # -- evaluation -----------------------------------------------------------------------
    def encode(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One ``z ~ q(z|x)`` per image, the noise from ``generator`` (CPU; a fresh one of
        :data:`RECONSTRUCTION_SEED` when ``None``)."""
        gen = generator if generator is not None else torch.Generator().manual_seed(
            RECONSTRUCTION_SEED)
        noise = torch.randn(x.shape[0], self.noise_dim, generator=gen)
        return self.draw_codes(x, noise.to(x))

    def reconstruct(self, x: Tensor) -> Tensor:
        """The mean image of ``p(x|z)`` for one ``z ~ q(z|x)`` (:meth:`encode`)."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def _codes(self, x: Tensor, device: torch.device | str, seed: int) -> Tensor:
        """One ``z ~ q(z|x)`` per row of ``x`` in eval mode on ``device``, the noise of all
        rows drawn at once from ``seed``."""
        with evaluating(self.encoder):
            gen = torch.Generator().manual_seed(seed)
            noise = torch.randn(x.shape[0], self.noise_dim, generator=gen)
            return torch.cat([self.draw_codes(a.to(device), b.to(device))
                              for a, b in zip(x.split(1000), noise.split(1000), strict=True)])

    @torch.no_grad()
    def elbo_terms(self, x: Tensor, device: torch.device | str) -> tuple[Tensor, Tensor]:
        """``(E_q log p(x|z), KL term)`` per image of ``x``, each the mean over
        :attr:`elbo_samples` ``z ~ q(z|x)`` (noise from :data:`EVAL_SEED`, all drawn at once)."""
        k = self.elbo_samples
        gen = torch.Generator().manual_seed(EVAL_SEED)
        noise = torch.randn(x.shape[0], k, self.noise_dim, generator=gen)
        log_lik, kl = [], []
        with evaluating(*self.networks().values()):
            for part, eps in zip(x.split(100), noise.split(100), strict=True):
                part = part.to(device)
                rows = part.repeat_interleave(k, 0)
                z = self.draw_codes(rows, eps.reshape(-1, self.noise_dim).to(device))
                log_lik.append(bernoulli_log_likelihood(self.decoder(z), rows)
                               .view(-1, k).mean(1))
                kl.append(self.kl_terms(rows, z).view(-1, k).mean(1))
        return torch.cat(log_lik).cpu(), torch.cat(kl).cpu()

    @torch.no_grad()
    def log_marginal(self, x: Tensor, device: torch.device | str) -> Tensor:
        """``log p(x) ≈ log 1/K sum_k p(x|z_k)`` per image, ``z_k ~ p(z)``, ``K =``
        :attr:`marginal_samples` drawn from :data:`EVAL_SEED` (the decoder alone: no
        encoder, no ``T``). Its expectation is a lower bound of ``log p(x)`` that tightens as
        ``K`` grows (Burda et al. 2016, Thm. 1, with the prior as proposal)."""
        k = self.marginal_samples
        z = self.prior.sample(k, torch.Generator().manual_seed(EVAL_SEED))
        target = ((x + 1) / 2).flatten(1).to(device)
        parts = []
        with evaluating(self.decoder):
            for chunk in z.split(MARGINAL_CHUNK):
                logits = self.decoder(chunk.to(device)).flatten(1)
                # sum_pixels t log σ(l) + (1 - t) log(1 - σ(l)) = sum_pixels t l - softplus(l)
                parts.append(target @ logits.T - nn.functional.softplus(logits).sum(1))
        return (torch.logsumexp(torch.cat(parts, 1), 1) - math.log(k)).cpu()

    def metrics(self, datamodule: Any, num_samples: int, device: torch.device | str
                ) -> dict[str, float]:
        """On up to ``num_samples`` held-out images: ``elbo`` = mean of
        ``E_q log p(x|z) - KL term`` in nats per image, its two parts
        ``elbo_log_likelihood`` and ``elbo_kl``, ``reconstruction_mse`` (mean over images
        and pixels of ``(x - reconstruct(x))²``, in [-1, 1]) and, with
        :attr:`marginal_samples`, ``log_px`` (:meth:`log_marginal`, mean in nats per
        image)."""
        x, _, source = held_out_sample(datamodule, num_samples, self.name)
        log_lik, kl = self.elbo_terms(x, device)
        codes = self._codes(x, device, RECONSTRUCTION_SEED)
        with evaluating(self.decoder), torch.no_grad():
            rec = torch.cat([self.decode(c) for c in codes.split(1000)]).cpu()
        self._last = {"held_out": source, "num_held_out": len(x)}
        out = {"elbo": float((log_lik - kl).mean()),
               "elbo_log_likelihood": float(log_lik.mean()),
               "elbo_kl": float(kl.mean()),
               "reconstruction_mse": float((rec - x).pow(2).mean())}
        if self.marginal_samples:
            out["log_px"] = float(self.log_marginal(x, device).mean())
        return out

    def protocol(self) -> dict[str, Any]:
        """How :meth:`metrics` measures (with the counts of its last call)."""
        return {
            "likelihood": "Bernoulli p(x|z): pixels mapped from [-1, 1] to [0, 1], "
                          "mean sigmoid(dec(z)); nats per image (summed over pixels)",
            "elbo": f"mean over held-out images of the mean over {self.elbo_samples} "
                    f"z ~ q(z|x) of log p(x|z) - KL term",
            "elbo_kl": self.kl_rule,
            "elbo_seed": EVAL_SEED,
            "log_px": f"log of the mean of p(x|z) over {self.marginal_samples} z ~ p(z) "
                      f"(seed {EVAL_SEED}); a lower bound in expectation, 0 samples: off",
            "reconstruction": "mean over held-out images and pixels (in [-1, 1]) of "
                              "(x - (2 sigmoid(dec(z)) - 1))^2, one z ~ q(z|x) each "
                              f"(seed {RECONSTRUCTION_SEED})",
            "prior": self.prior.describe(),
            "held_out_seed": RECONSTRUCTION_SEED,
            **getattr(self, "_last", {}),
        }

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, Any]:
        """:func:`autoencoder_pictures` with one ``z ~ q(z|x)`` per image (noise of
        :data:`SAMPLE_SEED`): ``codes`` (2-D code), ``prior_samples``, ``reconstructions``."""
        device = sampler.device
        return autoencoder_pictures(sampler, datamodule, self.prior,
                                    lambda x: self._codes(x, device, SAMPLE_SEED),
                                    self.num_reconstructions, self.name)


__all__ = ["MARGINAL_CHUNK", "SCATTER_PRIOR_SAMPLES", "BernoulliAutoencoder",
           "autoencoder_pictures",
           "bernoulli_log_likelihood", "bernoulli_mean", "gaussian_noise", "held_out_images",
           "held_out_sample", "joint"]
