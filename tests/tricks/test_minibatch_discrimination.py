"""minibatch_discrimination through the real step: D is replaced by one whose logit of a
sample depends on the other samples of its minibatch."""

from __future__ import annotations

import torch

from tricks.runs import baseline, differ, players, run


def logit_of_first(disc: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return disc(batch)[0]


def test_minibatch_discrimination_makes_d_see_the_minibatch(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    mbd = run(make_cfg, tmp_path / "mbd", "tricks=[minibatch_discrimination]")
    assert differ(players(base.final, "generator."), players(mbd.final, "generator."))
    assert differ(players(base.final, "discriminator."), players(mbd.final, "discriminator."))
    # The first real sample with the rest of its batch moved: the trained D's logit of it
    # changes, the plain D's does not.
    real = mbd.d_calls[0].input
    moved = torch.cat([real[:1], real[1:] + 1.0])
    trained, plain = mbd.module.discriminator, base.module.discriminator
    assert not torch.allclose(logit_of_first(trained, real), logit_of_first(trained, moved))
    assert torch.equal(logit_of_first(plain, real), logit_of_first(plain, moved))
    # The logits D gave in training are those of the whole minibatch.
    with torch.no_grad():
        assert torch.allclose(mbd.d_calls[0].output, mbd.d0(real))
        assert not torch.allclose(mbd.d_calls[0].output[:1], mbd.d0(real[:1]))
