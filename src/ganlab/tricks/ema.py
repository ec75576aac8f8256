"""Exponential moving average of G's weights (Yazıcı et al. 2019, "The Unusual Effectiveness of
Averaging in GAN Training"; Karras et al. 2018, "Progressive Growing of GANs", decay 0.999).

After every generator update ``t``: ``θ_ema ← β·θ_ema + (1 − β)·θ_t`` for every parameter, so
``θ_ema = β^t·θ_0 + (1 − β)·Σ_{s=1..t} β^{t−s}·θ_s``. G's buffers (e.g. batch-norm running
statistics) are copied, not averaged (as NVlabs' stylegan2-ada-pytorch does). ``θ_ema`` starts
as a copy of G at setup. The first ``start_iteration`` generator
updates copy ``θ`` instead of averaging (Yazıcı et al. start averaging after a warm-up).

The average lives in ``module.generator_ema`` (an ``nn.Module`` attribute: in the checkpoint's
``state_dict``, moved with the module, never optimised); ``module.eval_generator`` and so
``module.generate`` (samples, metrics) use it. Training still uses G itself.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch

from ganlab.core.errors import GanlabError
from ganlab.tricks.base import Trick

if TYPE_CHECKING:
    from ganlab.adapter.module import GANModule


class EMA(Trick):
    """Keeps ``module.generator_ema``, an exponential moving average of G.

    Args:
        decay: ``β`` in ``θ_ema ← β·θ_ema + (1 − β)·θ``, in [0, 1).
        start_iteration: generator updates (0-based index) below this copy ``θ`` into the
            average instead of averaging.
    """

    name = "ema"

    def __init__(self, decay: float = 0.999, start_iteration: int = 0) -> None:
        if not 0.0 <= decay < 1.0:
            raise GanlabError(f"ema: decay must be in [0, 1); got {decay}")
        if start_iteration < 0:
            raise GanlabError(f"ema: start_iteration must be ≥ 0; got {start_iteration}")
        self.decay = float(decay)
        self.start_iteration = int(start_iteration)

    def setup(self, module: GANModule) -> None:
        if hasattr(module, "generator_ema"):
            raise GanlabError("ema: the module already has a generator_ema")
        ema = copy.deepcopy(module.generator)
        ema.requires_grad_(False)
        module.generator_ema = ema

    @torch.no_grad()
    def after_g_step(self, module: GANModule) -> None:
        params = dict(module.generator.named_parameters())
        ema_params = dict(module.generator_ema.named_parameters())
        buffers = dict(module.generator.named_buffers())
        ema_buffers = dict(module.generator_ema.named_buffers())
        if params.keys() != ema_params.keys() or buffers.keys() != ema_buffers.keys():
            raise GanlabError(
                "ema: the generator changed after ema copied it; list ema after every trick "
                "that modifies the generator"
            )
        copy_only = module.iteration < self.start_iteration
        for name, p in params.items():
            if copy_only:
                ema_params[name].copy_(p)
            else:
                ema_params[name].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        for name, b in buffers.items():
            ema_buffers[name].copy_(b)
