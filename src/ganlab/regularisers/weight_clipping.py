"""Weight clipping of the critic (Arjovsky et al. 2017, "Wasserstein GAN", Algorithm 1)."""

from __future__ import annotations

import torch

from ganlab.core.errors import GanlabError
from ganlab.core.plugin import Plugin
from ganlab.core.step import DStep


class WeightClipping(Plugin):
    """After every critic update each parameter of D is clamped to ``[-clip, clip]``."""

    name = "weight_clipping"
    kind = "regulariser"

    def __init__(self, clip: float = 0.01) -> None:
        if not clip > 0:
            raise GanlabError(f"weight_clipping: clip must be > 0, got {clip}")
        self.clip = float(clip)

    @torch.no_grad()
    def after_d_step(self, step: DStep) -> None:
        for p in step.players.discriminator.parameters():
            p.clamp_(-self.clip, self.clip)
