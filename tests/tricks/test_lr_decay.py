"""lr_decay (src/ganlab/tricks/lr_decay.py): the schedule by hand, and through the real step."""

from __future__ import annotations

import pytest
import torch
from plugin_helpers import gstep, plugin
from torch import nn

from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.core.errors import GanlabError
from ganlab.tricks.lr_decay import LRDecay, decay_factor
from tricks.runs import baseline, differ, players, run


@pytest.mark.parametrize(
    ("iteration", "expected"),
    [(0, 1.0), (100, 1.0), (200, 1.0), (500, 1.0 - 0.9 * 0.5), (800, 0.1), (900, 0.1),
     (350, 1.0 - 0.9 * 0.25)],
)
def test_decay_factor_hand_values(iteration: int, expected: float) -> None:
    # T = 800, s = 200, f = 0.1: progress (t - 200) / 600
    assert abs(decay_factor(iteration, 800, 200, 0.1) - expected) <= 1e-12


def test_decay_factor_without_ramp_jumps_at_the_end() -> None:
    assert decay_factor(4, 5, 5, 0.3) == 1.0
    assert decay_factor(5, 5, 5, 0.3) == 0.3


def _optimizers(lrs: tuple[float, float]) -> list[torch.optim.Optimizer]:
    return [torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=lr) for lr in lrs]


def test_after_g_step_sets_next_iterations_rate_from_the_initial_one() -> None:
    trick = LRDecay(total_iterations=10, start_iteration=0, final_factor=0.0)
    opts = _optimizers((1e-3, 4e-3))
    zero = torch.zeros(())
    for it in range(10):
        optimizers = dict(zip("gd", opts, strict=True))
        trick.after_g_step(gstep(zero, zero, zero, it, optimizers=optimizers))
        expected = 1.0 - (it + 1) / 10
        for opt, lr0 in zip(opts, (1e-3, 4e-3), strict=True):
            group = opt.param_groups[0]
            assert group["base_lr"] == lr0
            assert abs(group["lr"] - lr0 * expected) <= 1e-15
    assert trick.log_values() == {"factor": 0.0}
    # the initial rate travels with the optimizer's state (so a resumed run keeps it)
    assert opts[1].state_dict()["param_groups"][0]["base_lr"] == 4e-3


def test_bad_settings_fail_with_one_line() -> None:
    for kwargs in ({"total_iterations": 0}, {"start_iteration": -1}, {"final_factor": 1.5}):
        with pytest.raises(GanlabError, match="lr_decay"):
            LRDecay(**kwargs)


def test_total_defaults_to_the_runs_iterations(make_cfg) -> None:
    cfg = make_cfg("tricks=[lr_decay]", "train.iterations=7")
    module = build_module(cfg, build_datamodule(cfg))
    trick = plugin(module, "lr_decay")
    assert trick.total_iterations == 7
    assert abs(trick.factor(7) - 0.1) <= 1e-12


def test_short_run_trains(make_cfg) -> None:
    cfg = make_cfg("tricks=[lr_decay]", "train.iterations=4", "metrics.every_n_iterations=0")
    assert train(cfg)["iterations"] == 4


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
