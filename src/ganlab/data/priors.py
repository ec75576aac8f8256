"""Priors p(z) of an adversarial autoencoder's code (Makhzani et al. 2015, §2 and Figs. 2, 4, 6).

Every prior draws from a given :class:`torch.Generator` on that generator's device, so a run's
draws are fixed by its seed and resume exactly, and states its moments in closed form
(:meth:`Prior.mean`, :meth:`Prior.covariance`). A *label-conditioned* prior
(:attr:`Prior.num_classes` > 0) draws the sample of class ``y`` from the part of the prior that
class owns (§2.3, Fig. 6); without labels it draws the class uniformly, so :meth:`Prior.sample`
always draws from the marginal ``p(z) = 1/K sum_y p(z | y)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError


class Prior:
    """Base of the priors: ``dim``-dimensional codes; ``num_classes`` > 0 when conditioned."""

    name = "prior"
    dim: int
    num_classes: int = 0

    def sample(self, n: int, generator: torch.Generator, labels: Tensor | None = None) -> Tensor:
        """``n`` codes ``(n, dim)`` (float32, on ``generator.device``); a conditioned prior
        draws row ``i`` from class ``labels[i]``'s part, an unconditioned one ignores ``labels``."""
        raise NotImplementedError

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A conditioned prior's ``n`` classes (uniform) and a code of each: ``(z, labels)``."""
        raise NotImplementedError(f"prior {self.name} is not label-conditioned")

    def mean(self) -> Tensor:
        """``E[z]`` ``(dim,)`` in closed form (float64)."""
        raise NotImplementedError

    def covariance(self) -> Tensor:
        """``Cov[z]`` ``(dim, dim)`` in closed form (float64)."""
        raise NotImplementedError

    def describe(self) -> dict[str, float | int | str]:
        """The prior's parameters, for the evaluation protocol."""
        return {"name": self.name, "dim": self.dim}


def _normal(n: int, dim: int, generator: torch.Generator) -> Tensor:
    return torch.randn((n, dim), generator=generator, device=generator.device)


def _uniform(n: int, generator: torch.Generator) -> Tensor:
    return torch.rand((n,), generator=generator, device=generator.device)


class Normal(Prior):
    """``z ~ N(0, std² I_dim)`` (the paper's Gaussian prior, Fig. 2)."""

    name = "normal"

    def __init__(self, dim: int, std: float = 1.0) -> None:
        if dim < 1 or not std > 0:
            raise GanlabError(f"prior normal: dim must be >= 1 and std > 0; got {dim}, {std}")
        self.dim, self.std = int(dim), float(std)

    def sample(self, n: int, generator: torch.Generator, labels: Tensor | None = None) -> Tensor:
        return self.std * _normal(n, self.dim, generator)

    def mean(self) -> Tensor:
        return torch.zeros(self.dim, dtype=torch.float64)

    def covariance(self) -> Tensor:
        return self.std**2 * torch.eye(self.dim, dtype=torch.float64)

    def describe(self) -> dict[str, float | int | str]:
        return {**super().describe(), "std": self.std}


def circle_centres(k: int, radius: float) -> Tensor:
    """``k`` points ``radius (cos 2πj/k, sin 2πj/k)``, ``j = 0..k-1`` (float64, ``(k, 2)``)."""
    angle = 2 * math.pi * torch.arange(k, dtype=torch.float64) / k
    return radius * torch.stack([angle.cos(), angle.sin()], 1)


class Mixture(Prior):
    """An equal mixture of ``components`` isotropic 2-D Gaussians ``N(c_j, std² I)`` with the
    centres ``c_j`` evenly on a circle of ``radius`` (the paper's 10-component prior, Fig. 4;
    the paper does not state its radius and width, ``radius=4, std=0.5`` are ours).

    ``E z = 1/K sum c_j``, ``Cov z = std² I + 1/K sum c_j c_jᵀ - E z E zᵀ``
    (``= (std² + radius²/2) I`` for ``K >= 3``).
    """

    name = "mixture"
    dim = 2

    def __init__(self, components: int = 10, radius: float = 4.0, std: float = 0.5) -> None:
        if components < 1 or not radius >= 0 or not std > 0:
            raise GanlabError(
                f"prior {self.name}: components must be >= 1, radius >= 0 and std > 0; "
                f"got {components}, {radius}, {std}"
            )
        self.components, self.radius, self.std = int(components), float(radius), float(std)
        self.centres = circle_centres(self.components, self.radius)

    def component_sample(self, component: Tensor, generator: torch.Generator) -> Tensor:
        """One draw of ``N(c_j, std² I)`` for each ``j`` in ``component`` ``(n,)``."""
        noise = _normal(component.shape[0], 2, generator)
        centres = self.centres.to(device=noise.device, dtype=noise.dtype)
        return centres[component.to(noise.device)] + self.std * noise

    def draw_components(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` components drawn uniformly from ``generator``."""
        return torch.randint(self.components, (n,), generator=generator, device=generator.device)

    def sample(self, n: int, generator: torch.Generator, labels: Tensor | None = None) -> Tensor:
        return self.component_sample(self.draw_components(n, generator), generator)

    def mean(self) -> Tensor:
        return self.centres.mean(0)

    def covariance(self) -> Tensor:
        mu = self.mean()
        spread = self.centres.T @ self.centres / self.components - torch.outer(mu, mu)
        return self.std**2 * torch.eye(2, dtype=torch.float64) + spread

    def describe(self) -> dict[str, float | int | str]:
        return {**super().describe(), "components": self.components, "radius": self.radius,
                "std": self.std}


class LabelMixture(Mixture):
    """The semi-supervised prior (§2.3, Fig. 6): the mixture of :class:`Mixture` where class
    ``y`` owns component ``y`` (``components = num_classes``): ``z | y ~ N(c_y, std² I)``.

    The code discriminator then also reads a one-hot label: the image's for its code, the
    component's for a prior sample. Its marginal (labels uniform) is :class:`Mixture`'s.
    """

    name = "label_mixture"

    def __init__(self, num_classes: int = 10, radius: float = 4.0, std: float = 0.5) -> None:
        super().__init__(components=num_classes, radius=radius, std=std)
        self.num_classes = self.components

    def sample(self, n: int, generator: torch.Generator, labels: Tensor | None = None) -> Tensor:
        if labels is None:
            labels = self.draw_components(n, generator)
        elif labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        return self.component_sample(labels, generator)

    def sample_labelled(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        labels = self.draw_components(n, generator)
        return self.component_sample(labels, generator), labels


class SwissRoll(Prior):
    """The 2-D swiss roll (Fig. 4c): ``t ~ U[t_min, t_max]``, ``z = scale (t cos t, t sin t)
    + noise ε``, ``ε ~ N(0, I)``; ``t`` from ``1.5π`` to ``4.5π`` as scikit-learn's
    ``make_swiss_roll``. Moments: closed-form integrals of ``t cos t``, ``t² cos² t``, ... over
    ``[t_min, t_max]`` (see :meth:`mean`), plus ``noise² I``.
    """

    name = "swiss_roll"
    dim = 2

    def __init__(self, scale: float = 0.25, noise: float = 0.0,
                 t_min: float = 1.5 * math.pi, t_max: float = 4.5 * math.pi) -> None:
        if not scale > 0 or not noise >= 0 or not t_max > t_min:
            raise GanlabError(
                f"prior swiss_roll: scale must be > 0, noise >= 0 and t_max > t_min; got "
                f"{scale}, {noise}, {t_min}, {t_max}"
            )
        self.scale, self.noise = float(scale), float(noise)
        self.t_min, self.t_max = float(t_min), float(t_max)

    def sample(self, n: int, generator: torch.Generator, labels: Tensor | None = None) -> Tensor:
        t = self.t_min + (self.t_max - self.t_min) * _uniform(n, generator)
        z = self.scale * torch.stack([t * t.cos(), t * t.sin()], 1)
        if self.noise > 0:
            z = z + self.noise * _normal(n, 2, generator)
        return z

    def _average(self, antiderivative: Callable[[float], float]) -> float:
        """``E f(t) = (F(b) - F(a)) / (b - a)`` for ``F' = f``, ``t ~ U[a, b]``."""
        f = antiderivative
        return (f(self.t_max) - f(self.t_min)) / (self.t_max - self.t_min)

    def mean(self) -> Tensor:
        """``E t cos t = [cos t + t sin t]/(b-a)``, ``E t sin t = [sin t - t cos t]/(b-a)``."""
        ex = self._average(lambda t: math.cos(t) + t * math.sin(t))
        ey = self._average(lambda t: math.sin(t) - t * math.cos(t))
        return self.scale * torch.tensor([ex, ey], dtype=torch.float64)

    def covariance(self) -> Tensor:
        """With ``C(t) = t²/2 sin 2t + t/2 cos 2t - 1/4 sin 2t`` (``C' = t² cos 2t``) and
        ``S(t) = -t²/2 cos 2t + t/2 sin 2t + 1/4 cos 2t`` (``S' = t² sin 2t``):
        ``E t² cos² t = [t³/6 + C/2]``, ``E t² sin² t = [t³/6 - C/2]``,
        ``E t² cos t sin t = [S/2]``, each over ``b - a``."""

        def c(t: float) -> float:
            return t * t / 2 * math.sin(2 * t) + t / 2 * math.cos(2 * t) - math.sin(2 * t) / 4

        def s(t: float) -> float:
            return -t * t / 2 * math.cos(2 * t) + t / 2 * math.sin(2 * t) + math.cos(2 * t) / 4

        exx = self._average(lambda t: t**3 / 6 + c(t) / 2)
        eyy = self._average(lambda t: t**3 / 6 - c(t) / 2)
        exy = self._average(lambda t: s(t) / 2)
        second = torch.tensor([[exx, exy], [exy, eyy]], dtype=torch.float64)
        mu = self.mean() / self.scale
        cov = self.scale**2 * (second - torch.outer(mu, mu))
        return cov + self.noise**2 * torch.eye(2, dtype=torch.float64)

    def describe(self) -> dict[str, float | int | str]:
        return {**super().describe(), "scale": self.scale, "noise": self.noise,
                "t_min": self.t_min, "t_max": self.t_max}


def one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(n,)`` int labels as ``(n, num_classes)`` one-hot rows."""
    return torch.nn.functional.one_hot(labels.long(), num_classes).to(dtype)


__all__ = ["LabelMixture", "Mixture", "Normal", "Prior", "SwissRoll", "circle_centres",
           "one_hot"]
