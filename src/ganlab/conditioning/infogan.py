"""InfoGAN (Chen et al. 2016, "InfoGAN: Interpretable Representation Learning by Information
Maximizing GANs", eqs. 4-6).

G's input is ``cat(z, c)`` with latent codes ``c``: categorical codes (one-hot, uniform over
``K_i`` values) and continuous codes (uniform on [-1, 1]). A head ``Q`` on D's features
predicts ``c`` from ``x``, and both G and Q maximise the variational lower bound of the mutual
information ``I(c; G(z, c))``:

    L_I(G, Q) = E_{c ~ p(c), x ~ G(z, c)} [log Q(c | x)] + H(c)  ≤  I(c; G(z, c))

with ``H(c) = Σ_i log K_i`` (categorical) ``+ m · log 2`` (``m`` continuous codes on [-1, 1]).
``Q(c | x)`` is a softmax over each categorical code and, for continuous codes, a Gaussian
``N(μ(x), σ²)`` with a **fixed** ``σ = continuous_std`` (1 by default, as ``fix_std=True`` in the
released InfoGAN code): ``log Q = -½ ((c - μ)/σ)² - log σ - ½ log 2π`` per code.

Costs (L_I only depends on the fake samples): ``J_D += -(w_cat L_I^cat + w_cont L_I^cont)`` (the
D step trains Q and D's shared body) and ``J_G += -(w_cat L_I^cat + w_cont L_I^cont)``. ``Q``
lives in D's wrapper, so it is optimised with D and saved with it. The logged
``mi_categorical`` / ``mi_continuous`` are the bounds in nats (``log K`` at most for a
categorical code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.conditioning.base import (
    Conditioning,
    TwoHeadDiscriminator,
    one_hot,
    require_features,
    to_device_of,
    uniform_labels,
)
from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.core.seeds import SAMPLE_SEED
from ganlab.core.step import DStep, GStep

LOG_2PI = math.log(2 * math.pi)


def categorical_log_likelihood(logits: Tensor, code: Tensor) -> Tensor:
    """``log Q(c | x)`` of one-hot codes ``c`` ``(B, K)`` under ``softmax(logits)``: ``(B,)``."""
    return (F.log_softmax(logits, dim=1) * code).sum(1)


def gaussian_log_likelihood(mean: Tensor, code: Tensor, std: float) -> Tensor:
    """``log N(c; μ, σ² I)`` summed over the code's dimensions: ``(B,)``."""
    z = (code - mean) / std
    return (-0.5 * z.pow(2) - math.log(std) - 0.5 * LOG_2PI).sum(1)


class InfoGANDiscriminator(TwoHeadDiscriminator):
    """D with the head Q on its features: ``outputs(x) = (head(φ(x)), Q(φ(x)))``."""

    def __init__(self, net: nn.Module, q_outputs: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = net
        self.feature_dim = require_features(net, "infogan")
        self.q = nn.Sequential(
            nn.Linear(self.feature_dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, q_outputs)
        )

    def aux_head(self) -> nn.Module:
        return self.q


class InfoGAN(Conditioning):
    """``conditioning=infogan``.

    Args:
        categorical: ``K_i`` of each categorical code (e.g. ``[10]`` for MNIST).
        continuous: number ``m`` of continuous codes, uniform on [-1, 1].
        weight_categorical, weight_continuous: ``λ`` of each part of ``L_I``.
        continuous_std: the fixed ``σ`` of ``Q``'s Gaussian.
        q_hidden: width of Q's hidden layer.
    """

    name = "infogan"
    provides = frozenset({"generator.code"})
    needs = frozenset({"discriminator.features"})
    #: Columns of the code grids.
    grid_columns = 10

    def __init__(self, categorical: Sequence[int] = (10,), continuous: int = 2,
                 weight_categorical: float = 1.0, weight_continuous: float = 1.0,
                 continuous_std: float = 1.0, q_hidden: int = 128) -> None:
        self.categorical = [int(k) for k in categorical]
        self.continuous = int(continuous)
        if any(k < 2 for k in self.categorical) or self.continuous < 0:
            raise GanlabError(
                "conditioning=infogan: categorical codes need at least 2 values and continuous "
                f"must be >= 0; got categorical={self.categorical}, continuous={continuous}"
            )
        if not self.categorical and not self.continuous:
            raise GanlabError("conditioning=infogan needs at least one latent code")
        if not continuous_std > 0 or not weight_categorical >= 0 or not weight_continuous >= 0:
            raise GanlabError("conditioning=infogan: continuous_std must be > 0, weights >= 0")
        self.weight_categorical = float(weight_categorical)
        self.weight_continuous = float(weight_continuous)
        self.continuous_std = float(continuous_std)
        self.q_hidden = int(q_hidden)
        self._log: dict[str, Tensor] = {}

    @property
    def code_dim(self) -> int:
        return sum(self.categorical) + self.continuous

    def entropy(self) -> tuple[float, float]:
        """``H(c)`` of the categorical and of the continuous codes, in nats."""
        return sum(math.log(k) for k in self.categorical), self.continuous * math.log(2.0)

    def setup(self, setup: Setup) -> None:
        d = setup.players.discriminator
        setup.players.discriminator = to_device_of(
            InfoGANDiscriminator(d, self.code_dim, self.q_hidden), d
        )

    def compose(self, n: int, categories: Sequence[Tensor], continuous: Tensor) -> Tensor:
        """The code of ``n`` samples from category indices (one ``(n,)`` tensor per
        categorical code) and continuous values ``(n, m)``."""
        parts = [one_hot(c, k) for c, k in zip(categories, self.categorical, strict=True)]
        return torch.cat([*(p.to(continuous.device) for p in parts), continuous], 1)

    def sample_code(self, n: int, generator: torch.Generator) -> Tensor:
        cats = [uniform_labels(n, k, generator) for k in self.categorical]
        cont = torch.rand(n, self.continuous, generator=generator, device=generator.device)
        return self.compose(n, cats, cont * 2 - 1)

    def fake_condition(self, z: Tensor, code: Tensor) -> Tensor:
        return code

    def discriminate(self, disc: nn.Module, x: Tensor, condition: Tensor | None
                     ) -> tuple[Tensor, Tensor | None]:
        if condition is None:  # real data: Q is not needed
            return disc(x), None
        return disc.outputs(x)

    def lower_bounds(self, q_out: Tensor, code: Tensor) -> tuple[Tensor, Tensor]:
        """``(L_I^cat, L_I^cont)``: the batch means of ``log Q(c | x)`` plus ``H(c)`` of the
        categorical and the continuous codes."""
        h_cat, h_cont = self.entropy()
        cat_ll = q_out.new_zeros(q_out.shape[0])
        start = 0
        for k in self.categorical:
            cat_ll = cat_ll + categorical_log_likelihood(
                q_out[:, start : start + k], code[:, start : start + k]
            )
            start += k
        cont_ll = gaussian_log_likelihood(q_out[:, start:], code[:, start:], self.continuous_std)
        return cat_ll.mean() + h_cat, cont_ll.mean() + h_cont

    def info_cost(self, q_out: Tensor, code: Tensor) -> Tensor:
        """``-(w_cat L_I^cat + w_cont L_I^cont)``."""
        cat, cont = self.lower_bounds(q_out, code)
        self._log["mi_categorical"], self._log["mi_continuous"] = cat.detach(), cont.detach()
        return -(self.weight_categorical * cat + self.weight_continuous * cont)

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        assert step.fake_aux is not None and step.fake_condition is not None
        return cost + self.info_cost(step.fake_aux, step.fake_condition)

    def g_cost(self, cost: Tensor, step: GStep) -> Tensor:
        assert step.fake_aux is not None and step.fake_condition is not None
        return cost + self.info_cost(step.fake_aux, step.fake_condition)

    def log_values(self) -> dict[str, float]:
        return {k: float(v) for k, v in self._log.items()}

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """Image data: ``code_cat<i>`` (one row per value of categorical code ``i``, the same
        ``z`` down each column) and ``code_cont<j>`` (continuous code ``j`` from -2 to 2 along
        each row, one row per value of the first categorical code, or per ``z`` without one);
        the other codes are held at category 0 and 0."""
        if len(tuple(datamodule.data_shape)) != 3:
            return {}
        cols, dev = self.grid_columns, sampler.device
        gen = torch.Generator(device=dev).manual_seed(SAMPLE_SEED)
        grids: dict[str, tuple[Tensor, int]] = {}
        for i, k in enumerate(self.categorical):
            n = k * cols
            z = sampler.sample_prior(cols, gen).repeat(k, 1)
            cats = [torch.zeros(n, dtype=torch.long, device=dev) for _ in self.categorical]
            cats[i] = torch.arange(k, device=dev).repeat_interleave(cols)
            code = self.compose(n, cats, torch.zeros(n, self.continuous, device=dev))
            grids[f"code_cat{i}"] = (sampler.generate_from(torch.cat([z, code], 1)), cols)
        rows = self.categorical[0] if self.categorical else cols
        for j in range(self.continuous):
            n = rows * cols
            z = sampler.sample_prior(rows, gen).repeat_interleave(cols, 0)
            cats = [torch.zeros(n, dtype=torch.long, device=dev) for _ in self.categorical]
            if self.categorical:
                cats[0] = torch.arange(rows, device=dev).repeat_interleave(cols)
            cont = torch.zeros(n, self.continuous, device=dev)
            cont[:, j] = torch.linspace(-2, 2, cols, device=dev).repeat(rows)
            code = self.compose(n, cats, cont)
            grids[f"code_cont{j}"] = (sampler.generate_from(torch.cat([z, code], 1)), cols)
        return grids
