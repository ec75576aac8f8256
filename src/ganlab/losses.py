"""Adversarial objectives, each a discriminator cost and a generator cost on logits.

Every cost takes the discriminator's raw output ``l`` (a logit, shape ``(B,)``), never a
probability. With ``D = sigmoid(l)`` the stable forms used throughout are

    log D      = -softplus(-l) = logsigmoid(l)
    log(1 - D) = -softplus(l)  = logsigmoid(-l)

so no cost here is inf or nan for finite logits, except where the formula itself grows
without bound (``MLGame``'s ``exp(l)``, see there). Expectations are means over every
element of the logits tensor. Formulas: ``GAN_SPEC.md`` sections 1-3.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "GANLoss",
    "Minimax",
    "NonSaturating",
    "MLGame",
    "LSGAN",
    "WGAN",
    "WGANGP",
    "Hinge",
    "LOSSES",
    "gradient_penalty",
    "require_per_sample_critic",
    "value_function",
]


def _mean(logits: Tensor) -> Tensor:
    """E over all elements; refuses an empty batch instead of returning nan."""
    if logits.numel() == 0:
        raise ValueError("empty logits: an expectation over zero samples is undefined")
    return logits.mean()


def value_function(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """V(D, G) = E_x log D(x) + E_z log(1 - D(G(z))) (Goodfellow et al. 2014, eq. 1).

    Computed from logits as ``E logsigmoid(l_real) + E logsigmoid(-l_fake)``.
    """
    return _mean(F.logsigmoid(real_logits)) + _mean(F.logsigmoid(-fake_logits))


def gradient_penalty(
    discriminator: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2], x_hat = eps*x + (1-eps)*x_fake (Gulrajani 2017, Alg. 1).

    ``eps ~ U[0, 1]`` is drawn once per sample (dim 0) and broadcast over all other dims;
    the gradient norm is taken over all non-batch dims. The graph is kept
    (``create_graph=True``) so the penalty is differentiable w.r.t. D's parameters.
    ``fake`` should come detached from G; both inputs are detached here anyway, as the
    penalty trains D only. The sum-over-batch trick used for the per-sample gradients
    requires D to treat samples independently (no batch norm in the critic, as the paper
    says). Without weight (lambda); multiply by it.
    """
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {real.shape} and {fake.shape}"
        )
    if real.dim() == 0 or real.shape[0] == 0:
        raise ValueError("gradient_penalty needs a non-empty batch along dim 0")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    draw_device = generator.device if generator is not None else real.device
    eps = torch.rand(shape, generator=generator, device=draw_device, dtype=real.dtype)
    eps = eps.to(real.device)
    with torch.enable_grad():
        x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
        out = discriminator(x_hat)
        (grads,) = torch.autograd.grad(
            outputs=out,
            inputs=x_hat,
            grad_outputs=torch.ones_like(out),
            create_graph=True,
        )
        norms = torch.linalg.vector_norm(grads.flatten(1), ord=2, dim=1)
        return ((norms - 1.0) ** 2).mean()


def require_per_sample_critic(discriminator: nn.Module, who: str) -> None:
    """Raise ``GanlabError`` if D has batch norm: gradient penalties need per-sample gradients,
    which batch statistics mix across the batch (Gulrajani et al. 2017, §4)."""
    from ganlab.errors import GanlabError

    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in discriminator.modules()):
        raise GanlabError(
            f"{who} needs a discriminator without batch norm (the penalty is per sample); "
            "set discriminator.net.batch_norm=false"
        )


class GANLoss:
    """Base: an adversarial objective = a discriminator cost and a generator cost."""

    name: str = ""

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Discriminator cost J_D (a scalar that D minimises)."""
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        """Generator cost J_G (a scalar that G minimises)."""
        raise NotImplementedError

    def d_penalty(
        self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor
    ) -> Tensor | None:
        """Extra term added to D's cost (WGAN-GP); None when there is none."""
        return None

    def after_d_step(self, discriminator: nn.Module) -> None:
        """Hook run after each optimizer step of D (e.g. WGAN weight clipping)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _CrossEntropyD(GANLoss):
    """J_D = -1/2 E_x log D(x) - 1/2 E_z log(1 - D(G(z))) (Goodfellow 2016 tutorial, eq. 8).

    = 1/2 BCE(l_real, 1) + 1/2 BCE(l_fake, 0), shared by the three tutorial games.
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * _mean(F.softplus(-real_logits)) + 0.5 * _mean(F.softplus(fake_logits))


class Minimax(_CrossEntropyD):
    """Zero-sum (saturating) game, Goodfellow 2016 NIPS tutorial, section 3.2.2.

    J_D as in eq. 8; J_G = -J_D up to the real-data term G cannot change:
    J_G = +1/2 E_z log(1 - D(G(z))) = -1/2 E softplus(l_fake).
    This is the true minimax cost, not the non-saturating heuristic: dJ_G/dl = -1/2 sigmoid(l)
    per sample, which vanishes as D confidently rejects fakes (l -> -inf).
    """

    name = "minimax"

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -0.5 * _mean(F.softplus(fake_logits))


class NonSaturating(_CrossEntropyD):
    """Heuristic non-saturating game, Goodfellow 2016 NIPS tutorial, section 3.2.3.

    J_D as in eq. 8; J_G = -1/2 E_z log D(G(z)) = 1/2 E softplus(-l_fake).
    dJ_G/dl = -1/2 (1 - sigmoid(l)) per sample, which tends to -1/2 as l -> -inf.
    """

    name = "non_saturating"

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * _mean(F.softplus(-fake_logits))


class MLGame(_CrossEntropyD):
    """Maximum-likelihood game, Goodfellow 2016 NIPS tutorial, section 3.2.4.

    J_D as in eq. 8; J_G = -1/2 E_z exp(sigmoid^-1(D(G(z)))) = -1/2 E exp(l_fake).
    With D = D* held fixed, exp(l) = p_data / p_g and the expected gradient of J_G w.r.t.
    G's parameters is 1/2 times the gradient of the negative log-likelihood E_data[-log p_g].

    Numerics: exp(l) is the formula, so it is not clamped. It overflows to inf (J_G = -inf)
    for l > ~88.7 in float32 (> ~709.8 in float64); the value and gradient are exact below.
    A D that confident on fakes means training has diverged; use float64 or another cost.
    """

    name = "ml_game"

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -0.5 * _mean(torch.exp(fake_logits))


class LSGAN(GANLoss):
    """Least squares GAN, Mao et al. 2017, eq. 2, on D's raw output (no sigmoid).

    J_D = 1/2 E_x (D(x) - b)^2 + 1/2 E_z (D(G(z)) - a)^2,  J_G = 1/2 E_z (D(G(z)) - c)^2.
    Defaults a=0, b=1, c=1 (the 0-1 coding of the paper's eq. 2).
    """

    name = "lsgan"

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0) -> None:
        self.a = float(a)
        self.b = float(b)
        self.c = float(c)

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return 0.5 * _mean((real_logits - self.b) ** 2) + 0.5 * _mean((fake_logits - self.a) ** 2)

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return 0.5 * _mean((fake_logits - self.c) ** 2)

    def __repr__(self) -> str:
        return f"LSGAN(a={self.a}, b={self.b}, c={self.c})"


class WGAN(GANLoss):
    """Wasserstein GAN, Arjovsky et al. 2017 (Algorithm 1), D being the critic f_w.

    J_D = E_z D(G(z)) - E_x D(x),  J_G = -E_z D(G(z)); after each critic step every
    parameter of D is clamped to [-clip, clip].
    """

    name = "wgan"

    def __init__(self, clip: float = 0.01) -> None:
        if not clip > 0:
            raise ValueError(f"clip must be > 0, got {clip}")
        self.clip = float(clip)

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return _mean(fake_logits) - _mean(real_logits)

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -_mean(fake_logits)

    def after_d_step(self, discriminator: nn.Module) -> None:
        with torch.no_grad():
            for p in discriminator.parameters():
                p.clamp_(-self.clip, self.clip)

    def __repr__(self) -> str:
        return f"WGAN(clip={self.clip})"


class WGANGP(GANLoss):
    """WGAN with gradient penalty, Gulrajani et al. 2017, Algorithm 1.

    J_D = E_z D(G(z)) - E_x D(x) + lambda E[(||grad D(x_hat)||_2 - 1)^2] (the penalty is
    returned by ``d_penalty``, see ``gradient_penalty``); J_G = -E_z D(G(z)). No clipping.
    """

    name = "wgan_gp"

    def __init__(self, gp_weight: float = 10.0) -> None:
        if not gp_weight >= 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        self.gp_weight = float(gp_weight)

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return _mean(fake_logits) - _mean(real_logits)

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -_mean(fake_logits)

    def d_penalty(
        self, discriminator: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor
    ) -> Tensor:
        return self.gp_weight * gradient_penalty(discriminator, real, fake)

    def __repr__(self) -> str:
        return f"WGANGP(gp_weight={self.gp_weight})"


class Hinge(GANLoss):
    """Hinge loss, Lim & Ye 2017 (Geometric GAN); as used by Miyato et al. 2018 (SN-GAN).

    J_D = E_x relu(1 - D(x)) + E_z relu(1 + D(G(z))),  J_G = -E_z D(G(z)).
    """

    name = "hinge"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return _mean(F.relu(1.0 - real_logits)) + _mean(F.relu(1.0 + fake_logits))

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -_mean(fake_logits)


LOSSES: dict[str, type[GANLoss]] = {
    cls.name: cls for cls in (Minimax, NonSaturating, MLGame, LSGAN, WGAN, WGANGP, Hinge)
}
