"""Fully connected generator and discriminator (Goodfellow et al. 2014, "Generative Adversarial
Nets": MLPs for G and D, dropout in D)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.nets.capabilities import network_capabilities

_ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh")


def make_activation(name: str, negative_slope: float = 0.2) -> nn.Module:
    """The hidden-layer non-linearity called ``name`` (one of ``relu``, ``leaky_relu``, ``elu``,
    ``tanh``)."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "elu":
        return nn.ELU()
    if name == "tanh":
        return nn.Tanh()
    raise GanlabError(f"unknown activation {name!r}; expected one of {', '.join(_ACTIVATIONS)}")


def _shape(data_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(s) for s in data_shape)
    if not shape or any(s < 1 for s in shape):
        raise GanlabError(f"data_shape must be a non-empty tuple of positive ints; got {shape}")
    return shape


def _check_layers(num_layers: int, hidden_dim: int) -> None:
    if num_layers < 1:
        raise GanlabError(f"num_layers must be at least 1; got {num_layers}")
    if hidden_dim < 1:
        raise GanlabError(f"hidden_dim must be at least 1; got {hidden_dim}")


class MLPGenerator(nn.Module):
    """``z -> x``: ``num_layers`` hidden layers of ``hidden_dim`` units, then a linear layer
    reshaped to ``data_shape``; ``output="tanh"`` for images in [-1, 1], ``"linear"`` for toy
    vectors. ``batch_norm=True`` puts a ``BatchNorm1d`` between each hidden linear layer (then
    without bias) and its activation, as in DCGAN's generator (Radford et al. 2016)."""

    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        hidden_dim: int = 128,
        num_layers: int = 3,
        activation: str = "relu",
        output: str = "linear",
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if latent_dim < 1:
            raise GanlabError(f"latent_dim must be at least 1; got {latent_dim}")
        _check_layers(num_layers, hidden_dim)
        if output not in ("linear", "tanh"):
            raise GanlabError(f"unknown generator output {output!r}; expected 'linear' or 'tanh'")
        self.latent_dim = int(latent_dim)
        self.data_shape = _shape(data_shape)
        layers: list[nn.Module] = []
        width = self.latent_dim
        for _ in range(num_layers):
            layers.append(nn.Linear(width, hidden_dim, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden_dim))
            layers.append(make_activation(activation))
            width = hidden_dim
        layers.append(nn.Linear(width, math.prod(self.data_shape)))
        if output == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def capabilities(self) -> frozenset[str]:
        """What this network offers to plugins: ``features`` (``features()``, ``head()``,
        ``feature_dim``) and ``batch_norm`` (it has batch-norm layers)."""
        return network_capabilities(self)

    def forward(self, z: Tensor) -> Tensor:
        """``(B, latent_dim) -> (B, *data_shape)``."""
        return self.net(z).view(z.shape[0], *self.data_shape)


class MLPDiscriminator(nn.Module):
    """``x -> logit``: flattens ``x``, ``num_layers`` hidden layers (activation, then dropout when
    ``dropout > 0``), a linear head. ``features`` is the last hidden layer's output."""

    def __init__(
        self,
        data_shape: Sequence[int],
        hidden_dim: int = 128,
        num_layers: int = 3,
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        _check_layers(num_layers, hidden_dim)
        if not 0.0 <= dropout < 1.0:
            raise GanlabError(f"dropout must be in [0, 1); got {dropout}")
        self.data_shape = _shape(data_shape)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(self.data_shape)
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_dim), make_activation(activation, negative_slope)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden_dim
        self.body = nn.Sequential(*layers)
        self.feature_dim = int(hidden_dim)
        self.head_linear = nn.Linear(hidden_dim, 1)

    def features(self, x: Tensor) -> Tensor:
        """``(B, *data_shape) -> (B, feature_dim)``."""
        return self.body(x)

    def head(self, f: Tensor) -> Tensor:
        """``(B, feature_dim) -> (B,)`` logits."""
        return self.head_linear(f).squeeze(1)

    def capabilities(self) -> frozenset[str]:
        """What this network offers to plugins: ``features`` (``features()``, ``head()``,
        ``feature_dim``) and ``batch_norm`` (it has batch-norm layers)."""
        return network_capabilities(self)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, *data_shape) -> (B,)`` logits."""
        return self.head(self.features(x))


class MLPEncoder(nn.Module):
    """``x -> code``: flattens ``x``, ``num_layers`` hidden layers of ``hidden_dim`` units, then
    a linear layer to ``code_dim`` outputs (a deterministic encoder ``q(z|x)``, as the
    adversarial autoencoder's, Makhzani et al. 2015, §2)."""

    def __init__(
        self,
        data_shape: Sequence[int],
        code_dim: int,
        hidden_dim: int = 128,
        num_layers: int = 3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if code_dim < 1:
            raise GanlabError(f"code_dim must be at least 1; got {code_dim}")
        _check_layers(num_layers, hidden_dim)
        self.data_shape = _shape(data_shape)
        self.code_dim = int(code_dim)
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(self.data_shape)
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_dim), make_activation(activation)]
            width = hidden_dim
        layers.append(nn.Linear(width, self.code_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, *data_shape) -> (B, code_dim)``."""
        return self.net(x)


__all__ = ["MLPDiscriminator", "MLPEncoder", "MLPGenerator", "make_activation"]
