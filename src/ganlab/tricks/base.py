"""Tricks are plugins (:mod:`ganlab.core.plugin`); this module names their base class."""

from __future__ import annotations

from ganlab.core.plugin import Plugin, Stage
from ganlab.core.step import DStep, GStep


class Trick(Plugin):
    """Base class of every trick (a :class:`~ganlab.core.plugin.Plugin` of kind ``trick``)."""

    kind = "trick"


__all__ = ["DStep", "GStep", "Stage", "Trick"]
