"""Two time-scale update rule (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium"): G and D get their own learning rates.

The convergence result needs distinct step sizes, with D on the faster time scale; the paper
does not fix one pair of values. The defaults ``g_lr = 1e-4``, ``d_lr = 4e-4`` are the pair
used with TTUR by Zhang et al. 2019 (SAGAN). The optimizers keep every other setting of
``optim`` (e.g. Adam's betas); only ``lr`` is replaced.
"""

from __future__ import annotations

import functools

from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.tricks.base import Stage, Trick


class TTUR(Trick):
    """Sets G's learning rate to ``g_lr`` and D's to ``d_lr``."""

    name = "ttur"
    stage = Stage.OPTIMIZER
    provides = frozenset({"optimizer.learning_rates"})

    def __init__(self, g_lr: float = 1e-4, d_lr: float = 4e-4) -> None:
        for key, value in (("g_lr", g_lr), ("d_lr", d_lr)):
            if not value > 0:
                raise GanlabError(f"ttur: {key} must be > 0; got {value}")
        self.g_lr = float(g_lr)
        self.d_lr = float(d_lr)

    def setup(self, setup: Setup) -> None:
        opt = setup.optimizers
        opt["generator"] = functools.partial(opt["generator"], lr=self.g_lr)
        opt["discriminator"] = functools.partial(opt["discriminator"], lr=self.d_lr)
