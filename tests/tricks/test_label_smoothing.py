"""label_smoothing through the real step: D's cost gets 1/2 (1 - alpha) E[l_real]."""

from __future__ import annotations

from torch.testing import assert_close

from tricks.runs import baseline, differ, ns_d_cost, players, run, scalar


def test_label_smoothing_changes_the_discriminator_cost(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    smooth = run(make_cfg, tmp_path / "smooth", "tricks=[label_smoothing]",
                 "tricks.label_smoothing.alpha=0.7")
    assert differ(players(base.final, "discriminator."), players(smooth.final, "discriminator."))
    assert differ(players(base.final, "generator."), players(smooth.final, "generator."))
    real, fake = smooth.d_calls[0].output, smooth.d_calls[1].output  # D's first step
    logged = scalar(smooth.logged[1]["train/d_loss"])
    assert_close(logged, ns_d_cost(real, fake) + 0.5 * 0.3 * real.mean())
    # Without the trick the same recomputation gives the plain cost (the check can fail).
    real, fake = base.d_calls[0].output, base.d_calls[1].output
    assert_close(scalar(base.logged[1]["train/d_loss"]), ns_d_cost(real, fake))
    assert float(real.mean()) != 0.0
