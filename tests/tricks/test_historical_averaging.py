"""historical_averaging through the real step: each player's cost gets
weight * ||theta - mean of its past values||^2."""

from __future__ import annotations

import pytest
import torch
from plugin_helpers import dstep, gstep, setup
from torch import nn
from torch.testing import assert_close

from ganlab.tricks.historical_averaging import HistoricalAveraging
from tricks.runs import baseline, differ, ns_d_cost, ns_g_cost, players, run, scalar
from tricks.unit_helpers import (
    roundtrip,
)


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


# -- formulas by hand -------------------------------------------
def scalar_net(w: float, b: float) -> nn.Linear:
    net = nn.Linear(1, 1).double()
    set_params(net, w, b)
    return net


def set_params(net: nn.Linear, w: float, b: float) -> None:
    with torch.no_grad():
        net.weight.fill_(w)
        net.bias.fill_(b)


def test_historical_averaging_mean_and_penalty_by_hand() -> None:
    d, g = scalar_net(1.0, 0.0), scalar_net(-1.0, 2.0)
    trick = HistoricalAveraging(weight=0.5)
    module = setup(trick, discriminator=d, generator=g).players  # theta_0 = (w=1, b=0)
    zero = torch.tensor(0.0, dtype=torch.float64)
    # theta_0 is part of the mean: no penalty before the first update.
    assert float(trick.d_cost(zero, dstep(zero, zero, players_=module)).detach()) == 0.0
    for w, b in [(2.0, 1.0), (4.0, -1.0), (5.0, 4.0)]:
        set_params(d, w, b)
        trick.after_d_step(dstep(zero, zero, players_=module))
    # mean w = (1 + 2 + 4 + 5) / 4 = 3, mean b = (0 + 1 - 1 + 4) / 4 = 1
    means = trick.d_mean.means
    assert float(means["weight"]) == pytest.approx(3.0, rel=1e-12)
    assert float(means["bias"]) == pytest.approx(1.0, rel=1e-12)
    assert trick.d_mean.updates == 3
    # 0.5 * ((5 - 3)^2 + (4 - 1)^2) = 6.5; gradient 2 * 0.5 * (theta - mean) = (2, 3).
    cost = trick.d_cost(zero, dstep(zero, zero, players_=module))
    assert float(cost.detach()) == pytest.approx(6.5, rel=1e-12)
    cost.backward()
    assert float(d.weight.grad) == pytest.approx(2.0, rel=1e-12)
    assert float(d.bias.grad) == pytest.approx(3.0, rel=1e-12)
    # G's mean is its own: still theta_0 of G, so G's penalty is (0.5 - -1)^2 * 0.5 after a move.
    assert trick.g_mean.updates == 0
    set_params(g, 0.5, 2.0)
    gcost = trick.g_cost(zero, gstep(zero, zero, zero, players_=module))
    assert float(gcost.detach()) == pytest.approx(0.5 * 1.5**2, rel=1e-12)
    trick.after_g_step(gstep(zero, zero, zero, players_=module))
    # G mean = (theta_0 + theta_1) / 2 = (-0.25, 2)
    assert float(trick.g_mean.means["weight"]) == pytest.approx(-0.25, rel=1e-12)
    assert float(trick.g_mean.means["bias"]) == pytest.approx(2.0, rel=1e-12)


def test_historical_averaging_state_round_trip() -> None:
    d, g = scalar_net(1.0, 0.0), scalar_net(0.0, 0.0)
    trick = HistoricalAveraging()
    module = setup(trick, discriminator=d, generator=g).players
    zero = torch.tensor(0.0, dtype=torch.float64)
    for w in (2.0, 3.0):
        set_params(d, w, w)
        trick.after_d_step(dstep(zero, zero, players_=module))
    state = roundtrip(trick.state_dict())
    other_d, other_g = scalar_net(9.0, 9.0), scalar_net(0.0, 0.0)  # fresh init, then restore
    restored = HistoricalAveraging()
    other = setup(restored, discriminator=other_d, generator=other_g).players
    restored.load_state_dict(state)
    set_params(other_d, 3.0, 3.0)
    for t, mod in ((trick, module), (restored, other)):
        set_params(mod.discriminator, 6.0, 6.0)
        t.after_d_step(dstep(zero, zero, players_=mod))
    # mean over (1, 2, 3, 6) = 3 for w; (0, 2, 3, 6) = 11/4 for b.
    for t in (trick, restored):
        assert t.d_mean.updates == 3
        assert float(t.d_mean.means["weight"]) == pytest.approx(3.0, rel=1e-12)
        assert float(t.d_mean.means["bias"]) == pytest.approx(11 / 4, rel=1e-12)
