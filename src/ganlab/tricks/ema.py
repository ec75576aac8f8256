"""Exponential moving average of G's weights (Yazıcı et al. 2019, "The Unusual Effectiveness of
Averaging in GAN Training"; Karras et al. 2018, "Progressive Growing of GANs", decay 0.999).

After every generator update ``t``: ``θ_ema ← β·θ_ema + (1 − β)·θ_t`` for every parameter, so
``θ_ema = β^t·θ_0 + (1 − β)·Σ_{s=1..t} β^{t−s}·θ_s``. G's buffers (e.g. batch-norm running
statistics) are copied, not averaged (as NVlabs' stylegan2-ada-pytorch does). ``θ_ema`` starts
as a copy of G at setup. The first ``start_iteration`` generator
updates copy ``θ`` instead of averaging (Yazıcı et al. start averaging after a warm-up).

The average is the extra network ``generator_ema`` (in the checkpoint's ``state_dict``, moved
with the run, never optimised) and the evaluated generator: samples and metrics use it.
Training still uses G itself. Its stage is the last one, so it copies G after every other
plugin has changed it (virtual batch norm, conditioning wrappers).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.core.step import GStep
from ganlab.tricks.base import Stage, Trick


class EMA(Trick):
    """Keeps ``generator_ema``, an exponential moving average of G, as the evaluated generator.

    Args:
        decay: ``β`` in ``θ_ema ← β·θ_ema + (1 − β)·θ``, in [0, 1).
        start_iteration: generator updates (0-based index) below this copy ``θ`` into the
            average instead of averaging.
    """

    name = "ema"
    stage = Stage.AVERAGE
    provides = frozenset({"generator.average"})

    def __init__(self, decay: float = 0.999, start_iteration: int = 0) -> None:
        if not 0.0 <= decay < 1.0:
            raise GanlabError(f"ema: decay must be in [0, 1); got {decay}")
        if start_iteration < 0:
            raise GanlabError(f"ema: start_iteration must be ≥ 0; got {start_iteration}")
        self.decay = float(decay)
        self.start_iteration = int(start_iteration)

    def setup(self, setup: Setup) -> None:
        ema = copy.deepcopy(setup.players.generator)
        ema.requires_grad_(False)
        setup.players.extra["generator_ema"] = ema
        setup.players.evaluated = "generator_ema"

    def _pairs(self, generator: nn.Module, ema: nn.Module
               ) -> tuple[list[Tensor], list[Tensor], list[Tensor], list[Tensor]]:
        """G's and the average's parameters and buffers, matched by name. The parameters
        (objects that moving a network keeps) are matched once per pair of networks; the
        buffers (which moving replaces) every time."""
        buffers, ema_buffers = dict(generator.named_buffers()), dict(ema.named_buffers())
        key = (id(generator), id(ema))
        if getattr(self, "_key", None) != key:
            params, ema_params = dict(generator.named_parameters()), dict(ema.named_parameters())
            if params.keys() != ema_params.keys():
                raise GanlabError("ema: the generator changed after ema copied it")
            self._key = key
            self._params = (list(params.values()), [ema_params[k] for k in params])
        if buffers.keys() != ema_buffers.keys():
            raise GanlabError("ema: the generator changed after ema copied it")
        return (*self._params, list(buffers.values()), [ema_buffers[k] for k in buffers])

    @torch.no_grad()
    def after_g_step(self, step: GStep) -> None:
        """``θ_ema ← decay · θ_ema + (1 - decay) · θ`` for every parameter (copied before
        ``start_iteration``); buffers copied."""
        params, ema_params, buffers, ema_buffers = self._pairs(
            step.players.generator, step.players.extra["generator_ema"])
        if step.iteration < self.start_iteration:
            torch._foreach_copy_(ema_params, params)
        else:
            torch._foreach_mul_(ema_params, self.decay)
            torch._foreach_add_(ema_params, params, alpha=1.0 - self.decay)
        if buffers:
            torch._foreach_copy_(ema_buffers, buffers)
