"""ttur through the real step: G and D train with their own learning rates (seen in Adam's
first step, whose size is the learning rate: |m / sqrt(v)| = |g| / (|g| + eps))."""

from __future__ import annotations

import pytest
import torch

from ganlab.app.build import build_datamodule, build_module
from ganlab.core.errors import GanlabError
from ganlab.nets.mlp import MLPGenerator
from ganlab.tricks.ttur import TTUR
from tricks.runs import baseline, players, run
from tricks.unit_helpers import (
    make_module,
)


def largest_step(run_, prefix: str) -> float:
    before, after = players(run_.states[0], prefix), players(run_.states[1], prefix)
    return max(float((after[k] - before[k]).abs().max()) for k in after)


def test_ttur_gives_each_player_its_learning_rate(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    ttur = run(make_cfg, tmp_path / "ttur", "tricks=[ttur]", "tricks.ttur.g_lr=2e-4",
               "tricks.ttur.d_lr=5e-3")
    assert largest_step(ttur, "generator.") == pytest.approx(2e-4, rel=1e-3)
    assert largest_step(ttur, "discriminator.") == pytest.approx(5e-3, rel=1e-3)
    # Without the trick both are optim=adam_toy's 1e-3.
    assert largest_step(base, "generator.") == pytest.approx(1e-3, rel=1e-3)
    assert largest_step(base, "discriminator.") == pytest.approx(1e-3, rel=1e-3)
    assert [g["lr"] for opt in ttur.trainer.optimizers for g in opt.param_groups] == [2e-4, 5e-3]
    assert isinstance(ttur.trainer.optimizers[0], torch.optim.Adam)


# -- formulas by hand -------------------------------------------
def test_ttur_sets_the_learning_rates(make_cfg) -> None:
    cfg = make_cfg("tricks=[ttur]")
    g_opt, d_opt = build_module(cfg, build_datamodule(cfg)).configure_optimizers()
    assert g_opt.param_groups[0]["lr"] == 1e-4
    assert d_opt.param_groups[0]["lr"] == 4e-4
    assert g_opt.param_groups[0]["betas"] == (0.5, 0.999)  # the rest of optim is kept
    cfg = make_cfg("tricks=[ttur]", "tricks.ttur.g_lr=3e-5", "tricks.ttur.d_lr=7e-4")
    g_opt, d_opt = build_module(cfg, build_datamodule(cfg)).configure_optimizers()
    assert (g_opt.param_groups[0]["lr"], d_opt.param_groups[0]["lr"]) == (3e-5, 7e-4)
    cfg = make_cfg("optim=adam")  # without the trick both are optim's 2e-4 (the test can fail)
    g_opt, d_opt = build_module(cfg, build_datamodule(cfg)).configure_optimizers()
    assert g_opt.param_groups[0]["lr"] == d_opt.param_groups[0]["lr"] == 2e-4


def test_ttur_wraps_the_optimizer_factories() -> None:
    module = make_module(MLPGenerator(2, (2,), hidden_dim=4, num_layers=1), 2,
                         [TTUR(g_lr=1e-3, d_lr=5e-3)])
    g_opt, d_opt = module.configure_optimizers()
    assert isinstance(g_opt, torch.optim.Adam) and isinstance(d_opt, torch.optim.Adam)
    assert (g_opt.param_groups[0]["lr"], d_opt.param_groups[0]["lr"]) == (1e-3, 5e-3)
    assert {id(p) for p in g_opt.param_groups[0]["params"]} == {
        id(p) for p in module.generator.parameters()
    }
    with pytest.raises(GanlabError, match="d_lr must be > 0"):
        TTUR(d_lr=0.0)
