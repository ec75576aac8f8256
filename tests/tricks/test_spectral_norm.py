"""spectral_norm through the real step: D trains with W / sigma(W) for every weight."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from tricks.runs import baseline, differ, players, run


def weights(disc: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(weight used in the forward, weight stored) of every Linear layer of D, in eval mode
    (no power-iteration step). The stored one is torch's parametrization ``original``."""
    disc.eval()
    out = []
    for m in disc.modules():
        if isinstance(m, nn.Linear):
            stored = m.parametrizations.weight.original if hasattr(m, "parametrizations") \
                else m.weight
            out.append((m.weight.detach(), stored.detach()))
    return out


def test_spectral_norm_normalises_the_weights_d_trains_with(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    sn = run(make_cfg, tmp_path / "sn", "tricks=[spectral_norm]")
    assert differ(players(base.final, "generator."), players(sn.final, "generator."))
    layers = weights(sn.module.discriminator)
    assert len(layers) == 4  # 3 hidden layers and the head of discriminator=mlp
    for used, stored in layers:
        scale = used.norm() / stored.norm()
        assert_close(used, scale * stored)  # W / sigma: one factor per layer
        assert float(torch.linalg.matrix_norm(used, 2)) == pytest.approx(1.0, abs=1e-2)
    plain = [float(torch.linalg.matrix_norm(used, 2)) for used, _ in
             weights(base.module.discriminator)]
    assert all(abs(s - 1.0) > 0.1 for s in plain)  # without the trick (the check can fail)
