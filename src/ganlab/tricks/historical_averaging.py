"""Historical averaging (Salimans et al. 2016, "Improved Techniques for Training GANs", §3.3)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.tricks.base import DStep, GStep, Trick

PLAYERS = ("discriminator", "generator")


class RunningMean:
    """The mean of every value a network's parameters have taken, ``theta_0`` included.

    After ``t`` optimizer updates it holds ``(1 / (t + 1)) sum_{i=0..t} theta_i`` per
    parameter (float32 and at least the parameter's precision), updated incrementally with
    ``mean += (theta_t - mean) / (t + 1)``. It starts from ``theta_0``, the parameters at
    the trick's setup (taken again at first use if parameters were added in between).
    """

    def __init__(self) -> None:
        self.means: dict[str, Tensor] = {}
        self.updates = 0

    @staticmethod
    def _dtype(p: Tensor) -> torch.dtype:
        return torch.promote_types(p.dtype, torch.float32)

    def ensure(self, net: nn.Module, what: str) -> None:
        """Start from ``theta_0`` (again if parameters were added before the first update);
        afterwards check the parameter set and move the means to the parameters' device."""
        params = dict(net.named_parameters())
        if not self.means or (self.updates == 0 and params.keys() != self.means.keys()):
            self.means = {n: p.detach().to(self._dtype(p)).clone() for n, p in params.items()}
            return
        if params.keys() != self.means.keys():
            raise GanlabError(
                f"historical_averaging: the {what}'s parameters do not match the saved means "
                f"({len(params)} parameters, {len(self.means)} means)"
            )
        for n, p in params.items():
            if self.means[n].device != p.device:
                self.means[n] = self.means[n].to(p.device)

    def update(self, net: nn.Module, what: str) -> None:
        """Include the parameters after one more optimizer update."""
        self.ensure(net, what)
        self.updates += 1
        with torch.no_grad():
            for n, p in net.named_parameters():
                mean = self.means[n]
                mean.add_((p.detach().to(mean.dtype) - mean) / (self.updates + 1))

    def penalty(self, net: nn.Module, what: str) -> Tensor:
        """``sum_p ||theta_p - mean_p||^2`` with the graph to ``theta``."""
        self.ensure(net, what)
        terms = [
            (p.to(self.means[n].dtype) - self.means[n]).pow(2).sum()
            for n, p in net.named_parameters()
        ]
        if not terms:
            raise GanlabError(f"historical_averaging: the {what} has no parameters")
        return torch.stack(terms).sum()

    def state_dict(self) -> dict[str, Any]:
        means = {n: m.detach().clone() for n, m in self.means.items()}
        return {"means": means, "updates": torch.tensor(self.updates)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.means = {n: t.clone() for n, t in state["means"].items()}
        self.updates = int(state["updates"])


class HistoricalAveraging(Trick):
    """Each player's cost gets ``weight * ||theta - (1/(t+1)) sum_{i=0..t} theta_i||^2``.

    The paper's term ``||theta - (1/t) sum_{i=1..t} theta[i]||^2``, with ``theta[i]`` the
    player's past parameter values: here every value since initialisation, ``theta_0`` and
    the current one included (so the term is 0 before the first update). ``t`` counts that
    player's own optimizer updates; the sum runs over all of its parameters. D's term is
    added in ``d_cost``, G's in ``g_cost``; the means follow each optimizer step.
    """

    name = "historical_averaging"

    def __init__(self, weight: float = 1.0) -> None:
        if not weight >= 0:
            raise GanlabError(f"historical_averaging: weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self.d_mean = RunningMean()
        self.g_mean = RunningMean()

    def setup(self, setup: Setup) -> None:
        self.d_mean.ensure(setup.players.discriminator, "discriminator")
        self.g_mean.ensure(setup.players.generator, "generator")

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        penalty = self.d_mean.penalty(step.players.discriminator, "discriminator")
        return cost + self.weight * penalty.to(cost.dtype)

    def g_cost(self, cost: Tensor, step: GStep) -> Tensor:
        penalty = self.g_mean.penalty(step.players.generator, "generator")
        return cost + self.weight * penalty.to(cost.dtype)

    def after_d_step(self, step: DStep) -> None:
        self.d_mean.update(step.players.discriminator, "discriminator")

    def after_g_step(self, step: GStep) -> None:
        self.g_mean.update(step.players.generator, "generator")

    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": self.d_mean.state_dict(), "generator": self.g_mean.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.d_mean.load_state_dict(state["discriminator"])
        self.g_mean.load_state_dict(state["generator"])
