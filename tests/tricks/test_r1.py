"""r1 through the real step: D's cost gets (gamma / 2) E ||grad_x D(x)||^2 on real data."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from tricks.runs import baseline, differ, ns_d_cost, players, run, scalar


def test_r1_adds_its_penalty_to_the_discriminator_cost(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    r1 = run(make_cfg, tmp_path / "r1", "tricks=[r1]", "tricks.r1.gamma=4.0")
    for prefix in ("generator.", "discriminator."):
        assert differ(players(base.final, prefix), players(r1.final, prefix))
    real, fake, again = (r1.d_calls[i] for i in range(3))  # D's step; the penalty's own call
    assert torch.equal(again.input, real.input)
    x = real.input.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(r1.d0(x).sum(), x)  # D before its first update
    penalty = grad.pow(2).sum(1).mean()
    assert float(penalty) > 1e-4
    logged = scalar(r1.logged[1]["train/d_loss"])
    assert_close(logged, ns_d_cost(real.output, fake.output) + 2.0 * penalty)
