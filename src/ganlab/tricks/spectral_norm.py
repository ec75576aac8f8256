"""Spectral normalization of D (Miyato et al. 2018, "Spectral Normalization for Generative
Adversarial Networks", Eq. 8 and Algorithm 1).

Every weight ``W`` of a ``Linear``, ``Conv2d`` or ``ConvTranspose2d`` layer of D is replaced by
``W / σ(W)``, where ``σ(W)`` is the largest singular value of ``W`` reshaped to a matrix
``(out_channels, in_channels·k_h·k_w)``, estimated by power iteration with a persistent vector
``u``: ``v ← Wᵀu/‖Wᵀu‖``, ``u ← Wv/‖Wv‖``, ``σ ≈ uᵀWv`` (``n_power_iterations`` rounds per forward
in training mode, as Algorithm 1 does one per update). This is
``torch.nn.utils.parametrizations.spectral_norm``; ``u`` and ``v`` are buffers of D, so they
are checkpointed. Biases are not normalised. Its stage comes after the plugins that add layers
to D (minibatch discrimination, conditioning heads), so their layers are normalised too.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.tricks.base import Stage, Trick

LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def apply_spectral_norm(net: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12) -> int:
    """Spectrally normalise the weight of every layer of ``net`` in :data:`LAYERS`; returns how
    many layers were normalised."""
    layers = [m for m in net.modules() if isinstance(m, LAYERS)]
    for m in layers:
        spectral_norm(m, "weight", n_power_iterations=n_power_iterations, eps=eps)
    return len(layers)


class SpectralNorm(Trick):
    """Spectral normalization of every linear and convolutional weight of D.

    Args:
        n_power_iterations: power-iteration rounds per forward of D in training mode.
        eps: added to norms in the power iteration (numerical safety).
    """

    name = "spectral_norm"
    stage = Stage.REPARAMETRISE
    excludes = frozenset({"discriminator.spectral_norm"})

    def __init__(self, n_power_iterations: int = 1, eps: float = 1e-12) -> None:
        if n_power_iterations < 1:
            raise GanlabError(
                f"spectral_norm: n_power_iterations must be ≥ 1; got {n_power_iterations}"
            )
        self.n_power_iterations = int(n_power_iterations)
        self.eps = float(eps)

    def setup(self, setup: Setup) -> None:
        d = setup.players.discriminator
        if apply_spectral_norm(d, self.n_power_iterations, self.eps) == 0:
            raise GanlabError(
                "spectral_norm found no Linear, Conv2d or ConvTranspose2d layer in the "
                "discriminator"
            )
