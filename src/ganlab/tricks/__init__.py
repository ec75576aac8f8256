"""Training tricks of the GAN tutorial and of Salimans et al. 2016, one module each.

Every trick is a :class:`ganlab.tricks.base.Trick` (a plugin); ``tricks=[a, b]`` composes them.
"""

from ganlab.tricks.base import DStep, GStep, Stage, Trick

__all__ = ["DStep", "GStep", "Stage", "Trick"]
