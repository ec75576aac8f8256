"""feature_matching through the real step: G's cost is ||E f(x) - E f(G(z))||^2 on D's
features; D's update is the plain one."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from tricks.runs import baseline, differ, ns_g_cost, players, run, scalar


def test_feature_matching_replaces_the_generator_cost(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    fm = run(make_cfg, tmp_path / "fm", "tricks=[feature_matching]")
    # One iteration: D's step comes first and does not involve the trick.
    assert not differ(players(base.final, "discriminator."), players(fm.final, "discriminator."))
    assert differ(players(base.final, "generator."), players(fm.final, "generator."))
    # G's step used D after its update (the final D) on the iteration's real batch.
    disc = fm.module.discriminator
    real, fake = fm.d_calls[0].input, fm.g_calls[1].output
    with torch.no_grad():
        expected = (disc.features(real).mean(0) - disc.features(fake).mean(0)).pow(2).sum()
        adversarial = ns_g_cost(disc(fake))
    logged = scalar(fm.logged[1]["train/g_loss"])
    assert_close(logged, expected)
    assert not torch.allclose(logged, adversarial)
    assert_close(scalar(base.logged[1]["train/g_loss"]), ns_g_cost(base.d_calls[2].output))
