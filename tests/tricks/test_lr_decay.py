"""lr_decay through the real step: both optimizers' learning rates follow
lr_t = lr_0 (1 - (1 - f) t / T)."""

from __future__ import annotations

import pytest

from tricks.runs import baseline, differ, players, run


def learning_rates(trainer) -> list[float]:
    return [group["lr"] for opt in trainer.optimizers for group in opt.param_groups]


def test_lr_decay_lowers_both_learning_rates(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base", iterations=3)
    decay = run(make_cfg, tmp_path / "decay", "tricks=[lr_decay]",
                "tricks.lr_decay.final_factor=0.25", iterations=3)
    # The first iteration runs at lr_0; the rate changes after its generator update.
    for prefix in ("generator.", "discriminator."):
        assert not differ(players(base.states[1], prefix), players(decay.states[1], prefix))
        assert differ(players(base.final, prefix), players(decay.final, prefix))
    factors = [decay.logged[t]["train/lr_decay/factor"] for t in (1, 2, 3)]
    assert factors == pytest.approx([1 - 0.75 / 3, 1 - 0.75 * 2 / 3, 0.25], rel=1e-12)
    lr0 = learning_rates(base.trainer)
    assert lr0 == pytest.approx([1e-3, 1e-3], rel=1e-12)  # optim=adam_toy, unchanged
    assert learning_rates(decay.trainer) == pytest.approx([0.25 * lr for lr in lr0], rel=1e-12)
