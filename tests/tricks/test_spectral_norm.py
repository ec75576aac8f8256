"""spectral_norm through the real step: D trains with W / sigma(W) for every weight."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.app.train import train
from ganlab.nets.mlp import MLPGenerator
from ganlab.tricks.spectral_norm import SpectralNorm, apply_spectral_norm
from tricks.runs import baseline, differ, players, run
from tricks.unit_helpers import (
    QUICK,
    last_state,
    make_module,
)


def weights(disc: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight used in the forward, weight stored) of every Linear layer of D, in eval mode
    (no power-iteration step). The stored one is torch's parametrization ``original``."""
    disc.eval()
    out = []
    for m in disc.modules():
        if isinstance(m, nn.Linear):
            stored = m.parametrizations.weight.original if hasattr(m, "parametrizations") \
                else m.weight
            out.append((m.weight.detach(), stored.detach()))
    return out


def test_spectral_norm_normalises_the_weights_d_trains_with(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    sn = run(make_cfg, tmp_path / "sn", "tricks=[spectral_norm]")
    assert differ(players(base.final, "generator."), players(sn.final, "generator."))
    layers = weights(sn.module.discriminator)
    assert len(layers) == 4  # 3 hidden layers and the head of discriminator=mlp
    for used, stored in layers:
        scale = used.norm() / stored.norm()
        assert_close(used, scale * stored)  # W / sigma: one factor per layer
        assert float(torch.linalg.matrix_norm(used, 2)) == pytest.approx(1.0, abs=1e-2)
    plain = [float(torch.linalg.matrix_norm(used, 2)) for used, _ in
             weights(base.module.discriminator)]
    assert all(abs(s - 1.0) > 0.1 for s in plain)  # without the trick (the check can fail)


# -- formulas by hand -------------------------------------------
def weight_matrix(m: nn.Module | Tensor, transposed: bool = False) -> Tensor:
    """W as Miyato et al. reshape it: (out, in * kh * kw); ConvTranspose2d stores (in, out, ...)."""
    if isinstance(m, nn.Module):
        transposed, m = isinstance(m, nn.ConvTranspose2d), m.weight
    w = m.detach()
    return (w.movedim(1, 0) if transposed else w).flatten(1)


def test_spectral_norm_makes_the_largest_singular_value_one() -> None:
    torch.manual_seed(0)
    gen = MLPGenerator(2, (2,), hidden_dim=8, num_layers=1)
    module = make_module(gen, 2, [SpectralNorm(n_power_iterations=10)])
    d = module.discriminator
    layers = [m for m in d.modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 3
    with torch.no_grad():
        for m in layers:
            m.parametrizations.weight.original.mul_(3.0)
    raw = [float(torch.linalg.matrix_norm(weight_matrix(m.parametrizations.weight.original), ord=2))
           for m in layers]
    assert all(s > 1.5 for s in raw), raw  # unnormalised weights fail the check below
    d.train()
    for _ in range(20):  # 200 power iterations
        d(torch.randn(8, 2))
    d.eval()  # reading the weight no longer iterates
    for m in layers:
        sigma = float(torch.linalg.matrix_norm(weight_matrix(m), ord=2))
        assert abs(sigma - 1.0) < 1e-4, sigma
    # G is untouched.
    assert not any(hasattr(m, "parametrizations") for m in module.generator.modules())


def test_spectral_norm_of_convolutions() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ConvTranspose2d(6, 4, 4, 2, 1))
    assert apply_spectral_norm(net, n_power_iterations=10) == 2
    for _ in range(20):
        net(torch.randn(2, 3, 8, 8))
    net.eval()
    for m in net:
        assert abs(float(torch.linalg.matrix_norm(weight_matrix(m), ord=2)) - 1.0) < 1e-4


def test_spectral_norm_real_run(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg("tricks=[spectral_norm]", *QUICK, out=tmp_path / "sn"))
    assert metrics["iterations"] == 4
    state = last_state(tmp_path / "sn")
    assert "discriminator.body.1.parametrizations.weight.original" in state
    assert "discriminator.head_linear.parametrizations.weight.original" in state
    assert "discriminator.body.1.weight" not in state


def test_spectral_norm_refuses_a_discriminator_normalised_already(make_cfg) -> None:
    """SNGAN's ResNet D has spectral norm of its own: the trick would normalise it twice."""
    from ganlab.app.build import build_datamodule, build_module
    from ganlab.core.errors import GanlabError

    overrides = ["data=mnist_offline", "generator=resnet", "discriminator=resnet",
                 "tricks=[spectral_norm]"]
    cfg = make_cfg(*overrides)
    with pytest.raises(GanlabError, match=r"^trick 'spectral_norm' cannot be used with "
                       r"discriminator 'resnet' \(discriminator.spectral_norm\)$"):
        build_module(cfg, build_datamodule(cfg))
    cfg = make_cfg(*overrides, "discriminator.net.spectral_norm=false")
    assert hasattr(build_module(cfg, build_datamodule(cfg)).discriminator.linear,
                   "parametrizations")
