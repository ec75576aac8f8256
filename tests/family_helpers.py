"""Helpers of the model families' unit tests: SGD players, a training context, snapshots of
the networks, and the check that a phase moved its players by exactly one SGD step on the
gradient of a hand-written cost (tests/families/)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.core.family import Family, TrainContext

LR = 0.1


def sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=LR)


def context(family: Family, noise_seed: int = 3) -> TrainContext:
    """A one-process context with the family's optimizers and a noise generator of
    ``noise_seed``."""
    nets = family.networks()
    optimizers = {name: factory([p for role in roles for p in nets[role].parameters()])
                  for name, (factory, roles) in family.optimizers().items()}
    return TrainContext(iteration=0, total_iterations=10, optimizers=optimizers,
                        backward=lambda c: c.backward(), noise=torch.Generator().manual_seed(
                            noise_seed))


def snapshot(family: Family) -> dict[str, dict[str, Tensor]]:
    return {role: {k: v.detach().clone() for k, v in net.state_dict().items()}
            for role, net in family.networks().items()}


def restored(before: dict[str, dict[str, Tensor]], family: Family) -> dict[str, nn.Module]:
    """Copies of the family's networks with the weights of ``before``."""
    nets = {role: copy.deepcopy(net) for role, net in family.networks().items()}
    for role, net in nets.items():
        net.load_state_dict(before[role])
    return nets


def assert_unchanged(before: dict[str, dict[str, Tensor]], family: Family, roles: list[str]
                     ) -> None:
    for role in roles:
        for k, v in family.networks()[role].state_dict().items():
            assert torch.equal(v, before[role][k]), f"{role}.{k} changed"


def assert_sgd_step(before: dict[str, dict[str, Tensor]], family: Family,
                    grads: dict[str, dict[str, Tensor]]) -> None:
    """Every parameter of ``grads``' roles moved by exactly ``-LR * grad``."""
    for role, by_name in grads.items():
        params = dict(family.networks()[role].named_parameters())
        for name, grad in by_name.items():
            assert not torch.equal(params[name].detach(), before[role][name]), f"{role}.{name}"
            torch.testing.assert_close(params[name].detach(), before[role][name] - LR * grad,
                                       atol=1e-6, rtol=1e-5)


def hand_grads(cost: Callable[[dict[str, nn.Module]], Tensor], family: Family, roles: list[str]
               ) -> dict[str, dict[str, Tensor]]:
    """Gradients of ``cost`` (a function of copies of the networks) w.r.t. ``roles``."""
    nets = {role: copy.deepcopy(net) for role, net in family.networks().items()}
    named = [(role, name, p) for role in roles for name, p in nets[role].named_parameters()]
    grads = torch.autograd.grad(cost(nets), [p for _, _, p in named])
    out: dict[str, dict[str, Tensor]] = {role: {} for role in roles}
    for (role, name, _), g in zip(named, grads, strict=True):
        out[role][name] = g
    return out
