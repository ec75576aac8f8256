"""MLPGenerator(batch_norm=True): a BatchNorm1d between each hidden linear layer and its ReLU."""

from __future__ import annotations

import torch
from torch import nn

from ganlab.nets.mlp import MLPGenerator


def test_batch_norm_layers_sit_between_linear_and_activation() -> None:
    g = MLPGenerator(latent_dim=4, data_shape=(2,), hidden_dim=8, num_layers=3, batch_norm=True)
    kinds = [type(m) for m in g.net]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU] * 3 + [nn.Linear]
    hidden = [m for m in g.net if isinstance(m, nn.Linear)][:-1]
    assert all(m.bias is None for m in hidden)  # batch norm's beta replaces the bias
    assert g.net[-1].bias is not None


def test_batch_norm_normalises_each_hidden_unit_over_the_batch() -> None:
    torch.manual_seed(0)
    g = MLPGenerator(latent_dim=4, data_shape=(2,), hidden_dim=8, num_layers=1, batch_norm=True)
    g.train()
    z = torch.randn(64, 4) * 5 + 3
    with torch.no_grad():
        pre = g.net[1](g.net[0](z))  # BatchNorm1d output, gamma = 1, beta = 0
    assert abs(float(pre.mean(0).abs().max())) <= 1e-5
    assert abs(float(pre.var(0, unbiased=False).mean()) - 1.0) <= 1e-3
    assert tuple(g(z).shape) == (64, 2)


def test_default_has_no_batch_norm() -> None:
    g = MLPGenerator(latent_dim=2, data_shape=(2,))
    assert not any(isinstance(m, nn.BatchNorm1d) for m in g.modules())
    assert all(m.bias is not None for m in g.modules() if isinstance(m, nn.Linear))
