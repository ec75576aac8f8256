"""Switching networks to eval mode for a while (samples, checks), restoring their modes after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def evaluating(*nets: nn.Module) -> Iterator[None]:
    """Put ``nets`` in eval mode inside the block; each gets its own mode back afterwards."""
    modes = [net.training for net in nets]
    for net in nets:
        net.eval()
    try:
        yield
    finally:
        for net, mode in zip(nets, modes, strict=True):
            net.train(mode)
