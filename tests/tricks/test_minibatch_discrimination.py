"""minibatch_discrimination through the real step: D is replaced by one whose logit of a
sample depends on the other samples of its minibatch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from ganlab.app.train import train
from ganlab.nets.mlp import MLPGenerator
from ganlab.tricks.minibatch_discrimination import (
    MinibatchDiscrimination,
    MinibatchDiscriminationTrick,
    MinibatchDiscriminator,
)
from ganlab.tricks.spectral_norm import SpectralNorm
from tricks.runs import baseline, differ, players, run
from tricks.unit_helpers import (
    QUICK,
    TOL32,
    TOL64,
    last_state,
    make_module,
)


def logit_of_first(disc: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return disc(batch)[0]


def test_minibatch_discrimination_makes_d_see_the_minibatch(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    mbd = run(make_cfg, tmp_path / "mbd", "tricks=[minibatch_discrimination]")
    assert differ(players(base.final, "generator."), players(mbd.final, "generator."))
    assert differ(players(base.final, "discriminator."), players(mbd.final, "discriminator."))
    # The first real sample with the rest of its batch moved: the trained D's logit of it
    # changes, the plain D's does not.
    real = mbd.d_calls[0].input
    moved = torch.cat([real[:1], real[1:] + 1.0])
    trained, plain = mbd.module.discriminator, base.module.discriminator
    assert not torch.allclose(logit_of_first(trained, real), logit_of_first(trained, moved))
    assert torch.equal(logit_of_first(plain, real), logit_of_first(plain, moved))
    # The logits D gave in training are those of the whole minibatch.
    with torch.no_grad():
        assert torch.allclose(mbd.d_calls[0].output, mbd.d0(real))
        assert not torch.allclose(mbd.d_calls[0].output[:1], mbd.d0(real[:1]))


# -- formulas by hand -------------------------------------------
def hand_layer(exclude_self: bool) -> MinibatchDiscrimination:
    """A = 2, B = 2, C = 2: M_{i,0} = (f_i0, f_i1), M_{i,1} = (f_i0, f_i0 - f_i1)."""
    layer = MinibatchDiscrimination(2, num_kernels=2, kernel_dim=2, exclude_self=exclude_self)
    t = torch.zeros(2, 2, 2, dtype=torch.float64)
    t[:, 0, :] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t[:, 1, :] = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    layer.T = nn.Parameter(t)
    return layer


@pytest.mark.parametrize("exclude_self", [False, True])
def test_minibatch_features_match_a_hand_computation(exclude_self: bool) -> None:
    f = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    # M_{.,0}: (0, 0), (1, 2), (0.5, -1)   -> L1: d01 = 3, d02 = 1.5, d12 = 3.5
    # M_{.,1}: (0, 0), (1, -1), (0.5, 1.5) -> L1: d01 = 2, d02 = 2,   d12 = 3
    e = math.exp
    self_term = 0.0 if exclude_self else 1.0
    expected = torch.tensor(
        [
            [e(-3) + e(-1.5), e(-2) + e(-2)],
            [e(-3) + e(-3.5), e(-2) + e(-3)],
            [e(-1.5) + e(-3.5), e(-2) + e(-3)],
        ],
        dtype=torch.float64,
    ) + self_term
    layer = hand_layer(exclude_self)
    assert_close(layer.similarity(f), expected, **TOL64)
    out = layer(f)
    assert out.shape == (3, 4)
    assert torch.equal(out[:, :2], f)
    assert_close(out[:, 2:], expected, **TOL64)


@pytest.mark.parametrize(("exclude_self", "value"), [(False, 5.0), (True, 4.0)])
def test_a_collapsed_batch_gives_n_exactly(exclude_self: bool, value: float) -> None:
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(8, num_kernels=3, kernel_dim=4, exclude_self=exclude_self)
    collapsed = torch.randn(1, 8).expand(5, 8)
    assert torch.equal(layer.similarity(collapsed), torch.full((5, 3), value))
    # A diverse batch does not (the check can fail).
    diverse = layer.similarity(torch.randn(5, 8) * 10)
    assert (diverse < value - 0.5).all()


def test_minibatch_discrimination_replaces_the_head_of_d() -> None:
    torch.manual_seed(0)
    module = make_module(MLPGenerator(2, (2,), hidden_dim=8, num_layers=1), 2,
                         [MinibatchDiscriminationTrick(num_kernels=3, kernel_dim=2)])
    d = module.discriminator
    assert isinstance(d, MinibatchDiscriminator)
    assert d.feature_dim == 16 + 3
    assert d.body.head_linear is None  # the original head is dropped
    x = torch.randn(6, 2)
    f = d.features(x)
    assert f.shape == (6, 19)
    assert torch.equal(f[:, :16], d.body.features(x))
    assert_close(f[:, 16:], d.mbd.similarity(d.body.features(x)), **TOL32)
    logits = d(x)
    assert logits.shape == (6,)
    assert_close(logits, f @ d.head_linear.weight[0] + d.head_linear.bias, **TOL32)
    body = sum(p.numel() for p in d.body.parameters())
    assert body == (2 * 16 + 16) + (16 * 16 + 16)
    assert sum(p.numel() for p in d.parameters()) == body + 16 * 3 * 2 + (19 + 1)


@pytest.mark.parametrize("order", [0, 1])
def test_spectral_norm_normalises_the_minibatch_layers_in_either_order(order: int) -> None:
    """Stages, not list order: minibatch discrimination changes D before spectral norm."""
    gen = MLPGenerator(2, (2,), hidden_dim=8, num_layers=1)
    tricks = [SpectralNorm(), MinibatchDiscriminationTrick()]
    d = make_module(gen, 2, tricks if order else tricks[::-1]).discriminator
    assert isinstance(d, MinibatchDiscriminator)
    assert hasattr(d.head_linear, "parametrizations")


def test_minibatch_discrimination_real_run(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg("tricks=[minibatch_discrimination]", *QUICK, out=tmp_path / "r"))
    assert metrics["iterations"] == 4
    state = last_state(tmp_path / "r")
    assert state["discriminator.mbd.T"].shape == (128, 16, 5)
    assert "discriminator.body.head_linear.weight" not in state
