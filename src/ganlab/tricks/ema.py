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

    @torch.no_grad()
    def after_g_step(self, step: GStep) -> None:
        generator, ema = step.players.generator, step.players.extra["generator_ema"]
        params = dict(generator.named_parameters())
        ema_params = dict(ema.named_parameters())
        buffers = dict(generator.named_buffers())
        ema_buffers = dict(ema.named_buffers())
        if params.keys() != ema_params.keys() or buffers.keys() != ema_buffers.keys():
            raise GanlabError("ema: the generator changed after ema copied it")
        copy_only = step.iteration < self.start_iteration
        for name, p in params.items():
            if copy_only:
                ema_params[name].copy_(p)
            else:
                ema_params[name].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        for name, b in buffers.items():
            ema_buffers[name].copy_(b)
