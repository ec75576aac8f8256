"""historical_averaging through the real step: each player's cost gets
weight * ||theta - mean of its past values||^2."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from tricks.runs import baseline, differ, ns_d_cost, ns_g_cost, players, run, scalar


def distance_to_mean(states: list[dict[str, torch.Tensor]], prefix: str) -> torch.Tensor:
    """||theta_1 - (theta_0 + theta_1) / 2||^2 over the parameters under ``prefix``."""
    before, after = players(states[0], prefix), players(states[1], prefix)
    return sum(((after[k] - before[k]) / 2).pow(2).sum() for k in after)


def test_historical_averaging_penalises_both_players(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base", iterations=2)
    ha = run(make_cfg, tmp_path / "ha", "tricks=[historical_averaging]",
             "tricks.historical_averaging.weight=2.0", iterations=2)
    # At the first iteration every parameter equals its mean: the penalty is 0.
    assert not differ(players(base.states[1], "discriminator."),
                      players(ha.states[1], "discriminator."))
    for prefix in ("generator.", "discriminator."):
        assert differ(players(base.final, prefix), players(ha.final, prefix))
    # Second iteration (D calls 3-5: real, fake, G's fake): the mean is (theta_0 + theta_1) / 2.
    real, fake, g_fake = (ha.d_calls[i].output for i in (3, 4, 5))
    d_penalty = distance_to_mean(ha.states, "discriminator.")
    g_penalty = distance_to_mean(ha.states, "generator.")
    assert float(d_penalty) > 0 and float(g_penalty) > 0
    assert_close(scalar(ha.logged[2]["train/d_loss"]), ns_d_cost(real, fake) + 2.0 * d_penalty)
    assert_close(scalar(ha.logged[2]["train/g_loss"]), ns_g_cost(g_fake) + 2.0 * g_penalty)
