"""ttur through the real step: G and D train with their own learning rates (seen in Adam's
first step, whose size is the learning rate: |m / sqrt(v)| = |g| / (|g| + eps))."""

from __future__ import annotations

import pytest
import torch

from tricks.runs import baseline, players, run


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
