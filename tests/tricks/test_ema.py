"""ema through the real step: training is unchanged, generator_ema is the running average and
the samples come from it."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from tricks.runs import baseline, differ, players, run


def test_ema_averages_the_generator_and_the_samples_use_it(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    ema = run(make_cfg, tmp_path / "ema", "tricks=[ema]", "tricks.ema.decay=0.5")
    # The average never enters training: G and D end exactly as without the trick.
    for prefix in ("generator.", "discriminator."):
        assert not differ(players(base.final, prefix), players(ema.final, prefix))
    # After one update: theta_ema = 0.5 theta_0 + 0.5 theta_1.
    theta0, theta1 = players(ema.states[0], "generator."), players(ema.final, "generator.")
    average = players(ema.final, "generator_ema.")
    assert len(average) == len(theta1) > 0
    for key, value in theta1.items():
        expected = 0.5 * theta0[key] + 0.5 * value
        assert_close(average["generator_ema." + key.removeprefix("generator.")], expected)
    assert differ({k.removeprefix("generator_ema."): v for k, v in average.items()},
                  {k.removeprefix("generator."): v for k, v in theta1.items()})
    # Samples come from the average, so they differ from the run without it.
    base_samples, ema_samples = base.module.generate(16, seed=3), ema.module.generate(16, seed=3)
    assert not torch.equal(base_samples, ema_samples)
    assert torch.equal(base.module.generate(16, seed=3), base_samples)
