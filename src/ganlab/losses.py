"""Adversarial objectives, each a discriminator cost and a generator cost on logits.

Every cost takes the discriminator's raw output ``l`` (a logit, shape ``(B,)``), never a
probability. With ``D = sigmoid(l)`` the stable forms used throughout are

    log D      = -softplus(-l) = logsigmoid(l)
    log(1 - D) = -softplus(l)  = logsigmoid(-l)

so no cost here is inf or nan for finite logits, except where the formula itself grows
without bound (``MLGame``'s ``exp(l)``, see there, and the exponentials of the f-GAN KL,
reverse-KL and Hellinger costs: float32 overflows beyond |l| ~ 88). Expectations are means
over every element of the logits tensor. Formulas: ``GAN_SPEC.md`` sections 1-3. The f-GAN
objectives (``FGAN`` and its five subclasses) read D's output as the logit V of the
variational function T = g_f(V) (Nowozin et al. 2016, Table 2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "GANLoss",
    "Minimax",
    "NonSaturating",
    "MLGame",
    "LSGAN",
    "WGAN",
    "Hinge",
    "FGAN",
    "FGANKL",
    "FGANReverseKL",
    "FGANJensenShannon",
    "FGANPearson",
    "FGANHellinger",
    "LOSSES",
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


class GANLoss:
    """Base: an adversarial objective = a discriminator cost and a generator cost.

    ``regularisers``: plugins the objective is defined with (WGAN's weight clipping, WGAN-GP's
    gradient penalty; :mod:`ganlab.regularisers`), given by the loss's config and run with the
    run's other plugins.
    """

    name: str = ""
    #: Capabilities of this objective (``loss.cross_entropy`` for the tutorial games).
    provides: frozenset[str] = frozenset()

    def __init__(self, regularisers: Mapping[str, Any] | None = None) -> None:
        self.regularisers = dict(regularisers or {})

    def plugins(self) -> list[Any]:
        """The regularisers this objective brings, in their config order."""
        return list(getattr(self, "regularisers", {}).values())

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Discriminator cost J_D (a scalar that D minimises)."""
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        """Generator cost J_G (a scalar that G minimises)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _CrossEntropyD(GANLoss):
    """J_D = -1/2 E_x log D(x) - 1/2 E_z log(1 - D(G(z))) (Goodfellow 2016 tutorial, eq. 8).

    = 1/2 BCE(l_real, 1) + 1/2 BCE(l_fake, 0), shared by the three tutorial games.
    """

    provides = frozenset({"loss.cross_entropy"})

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

    def __init__(self, a: float = 0.0, b: float = 1.0, c: float = 1.0,
                 regularisers: Mapping[str, Any] | None = None) -> None:
        super().__init__(regularisers)
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

    J_D = E_z D(G(z)) - E_x D(x),  J_G = -E_z D(G(z)). The Lipschitz constraint is a
    regulariser of the loss's config: weight clipping to [-0.01, 0.01] after each critic step
    (``loss=wgan``) or the gradient penalty of Gulrajani et al. 2017 with lambda = 10
    (``loss=wgan_gp``, their Algorithm 1).
    """

    name = "wgan"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return _mean(fake_logits) - _mean(real_logits)

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -_mean(fake_logits)


class Hinge(GANLoss):
    """Hinge loss, Lim & Ye 2017 (Geometric GAN); as used by Miyato et al. 2018 (SN-GAN).

    J_D = E_x relu(1 - D(x)) + E_z relu(1 + D(G(z))),  J_G = -E_z D(G(z)).
    """

    name = "hinge"

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return _mean(F.relu(1.0 - real_logits)) + _mean(F.relu(1.0 + fake_logits))

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        return -_mean(fake_logits)


GENERATOR_OBJECTIVES = ("alternative", "saddle")


class FGAN(GANLoss):
    """f-GAN: variational divergence minimisation, Nowozin, Cseke & Tomioka 2016.

    D's output is the logit V of the variational function T = g_f(V), with the output
    activation g_f of the paper's Table 2, which maps R onto the domain of the Fenchel
    conjugate f*. D maximises the lower bound of eq. 6 on
    D_f(P || Q) = E_Q f(p/q) (Table 1's f; P the data, Q the generator),

        F = E_P[g_f(V(x))] - E_Q[f*(g_f(V(x)))],   so  J_D = -F.

    The bound is tight at T*(x) = f'(p(x)/q(x)) (eq. 5). Two generator costs:

    - ``"alternative"`` (default): J_G = -E_Q[g_f(V)], the update of Section 3.2
      ("Practical considerations"): maximise the variational function on generated samples,
      the analogue of the non-saturating GAN, which the paper recommends for faster
      convergence; it keeps the saddle point's stationary points.
    - ``"saddle"``: J_G = -E_Q[f*(g_f(V))], the term of F that G can change (Algorithm 1
      on F itself); with T = T* its gradient is the gradient of D_f(P || Q).

    Subclasses give ``f`` (Table 1), ``activation`` = g_f and ``conjugate`` = f* (Table 2),
    ``f_prime_1`` = f'(1) (the value of T* when P = Q), and f*(g_f(v)) in a closed form that
    avoids the composition's rounding (for JS, g_f(40) rounds to log 2, where f* is inf).
    """

    #: f'(1): T* where p = q (Table 2, last column).
    f_prime_1: float = 0.0

    def __init__(self, generator_objective: str = "alternative",
                 regularisers: Mapping[str, Any] | None = None) -> None:
        super().__init__(regularisers)
        if generator_objective not in GENERATOR_OBJECTIVES:
            raise ValueError(
                f"unknown generator_objective '{generator_objective}'; "
                f"valid: {', '.join(GENERATOR_OBJECTIVES)}"
            )
        self.generator_objective = generator_objective

    @staticmethod
    def f(u: Tensor) -> Tensor:
        """The generator function f of the divergence (Table 1), for u = p/q > 0."""
        raise NotImplementedError

    @staticmethod
    def activation(v: Tensor) -> Tensor:
        """T = g_f(v), the output activation (Table 2)."""
        raise NotImplementedError

    @staticmethod
    def conjugate(t: Tensor) -> Tensor:
        """f*(t) = sup_u (u t - f(u)), the Fenchel conjugate on its domain (Table 2)."""
        raise NotImplementedError

    def conjugate_of_activation(self, v: Tensor) -> Tensor:
        """f*(g_f(v)); subclasses simplify it so that no step overflows or loses digits."""
        return self.conjugate(self.activation(v))

    def bound(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """F = E_P[g_f(V)] - E_Q[f*(g_f(V))] (eq. 6): a lower bound on D_f(P || Q)."""
        return _mean(self.activation(real_logits)) - _mean(
            self.conjugate_of_activation(fake_logits)
        )

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        return -self.bound(real_logits, fake_logits)

    def g_loss(self, fake_logits: Tensor) -> Tensor:
        if self.generator_objective == "saddle":
            return -_mean(self.conjugate_of_activation(fake_logits))
        return -_mean(self.activation(fake_logits))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(generator_objective='{self.generator_objective}')"


class FGANKL(FGAN):
    """Kullback-Leibler KL(P || Q): f(u) = u log u; g_f(v) = v; f*(t) = exp(t - 1)."""

    name = "fgan_kl"
    f_prime_1 = 1.0

    @staticmethod
    def f(u: Tensor) -> Tensor:
        return torch.xlogy(u, u)

    @staticmethod
    def activation(v: Tensor) -> Tensor:
        return v

    @staticmethod
    def conjugate(t: Tensor) -> Tensor:
        return torch.exp(t - 1.0)


class FGANReverseKL(FGAN):
    """Reverse KL, KL(Q || P): f(u) = -log u; g_f(v) = -exp(-v); f*(t) = -1 - log(-t), t < 0.

    f*(g_f(v)) = v - 1.
    """

    name = "fgan_reverse_kl"
    f_prime_1 = -1.0

    @staticmethod
    def f(u: Tensor) -> Tensor:
        return -torch.log(u)

    @staticmethod
    def activation(v: Tensor) -> Tensor:
        return -torch.exp(-v)

    @staticmethod
    def conjugate(t: Tensor) -> Tensor:
        return -1.0 - torch.log(-t)

    def conjugate_of_activation(self, v: Tensor) -> Tensor:
        return v - 1.0


class FGANJensenShannon(FGAN):
    """Jensen-Shannon: f(u) = -(u + 1) log((1 + u)/2) + u log u (Table 1).

    g_f(v) = log 2 - log(1 + exp(-v)); f*(t) = -log(2 - exp(t)), t < log 2;
    f*(g_f(v)) = softplus(v) - log 2. With this f, D_f = KL(P || M) + KL(Q || M) =
    2 JS(P || Q) for M = (P + Q)/2: twice the JS of Goodfellow et al. (Table 1's ½ in the
    D_f column does not match its f), so the maximal bound is 2 JS, between 0 and log 4.
    Here -F = 2 J_D(cross-entropy) - log 4 and the alternative J_G is 2 x the non-saturating
    cost - log 2: Goodfellow's GAN with its costs doubled.
    """

    name = "fgan_js"
    f_prime_1 = 0.0

    @staticmethod
    def f(u: Tensor) -> Tensor:
        return -(u + 1.0) * torch.log((1.0 + u) / 2.0) + torch.xlogy(u, u)

    @staticmethod
    def activation(v: Tensor) -> Tensor:
        return math.log(2.0) - F.softplus(-v)

    @staticmethod
    def conjugate(t: Tensor) -> Tensor:
        return -torch.log(2.0 - torch.exp(t))

    def conjugate_of_activation(self, v: Tensor) -> Tensor:
        return F.softplus(v) - math.log(2.0)


class FGANPearson(FGAN):
    """Pearson chi^2: f(u) = (u - 1)^2; g_f(v) = v; f*(t) = t^2/4 + t.

    D_f = E_Q (p/q - 1)^2 = E_P[p/q] - 1.
    """

    name = "fgan_pearson"
    f_prime_1 = 0.0

    @staticmethod
    def f(u: Tensor) -> Tensor:
        return (u - 1.0) ** 2

    @staticmethod
    def activation(v: Tensor) -> Tensor:
        return v

    @staticmethod
    def conjugate(t: Tensor) -> Tensor:
        return 0.25 * t**2 + t


class FGANHellinger(FGAN):
    """Squared Hellinger: f(u) = (sqrt(u) - 1)^2, D_f = E (sqrt(p) - sqrt(q))^2 (no ½).

    g_f(v) = 1 - exp(-v); f*(t) = t / (1 - t), t < 1; f*(g_f(v)) = exp(v) - 1.
    """

    name = "fgan_hellinger"
    f_prime_1 = 0.0

    @staticmethod
    def f(u: Tensor) -> Tensor:
        return (torch.sqrt(u) - 1.0) ** 2

    @staticmethod
    def activation(v: Tensor) -> Tensor:
        return -torch.expm1(-v)

    @staticmethod
    def conjugate(t: Tensor) -> Tensor:
        return t / (1.0 - t)

    def conjugate_of_activation(self, v: Tensor) -> Tensor:
        return torch.expm1(v)


LOSSES: dict[str, type[GANLoss]] = {
    cls.name: cls
    for cls in (
        Minimax, NonSaturating, MLGame, LSGAN, WGAN, Hinge,
        FGANKL, FGANReverseKL, FGANJensenShannon, FGANPearson, FGANHellinger,
    )
}
