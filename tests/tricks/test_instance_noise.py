"""instance_noise through the real step: every input of D, real or fake, in D's and G's steps,
gets sigma_t times the trick's own seeded N(0, 1) noise."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from tricks.runs import baseline, differ, players, run


def test_instance_noise_is_added_to_every_input_of_the_discriminator(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base", iterations=2)
    noisy = run(make_cfg, tmp_path / "noisy", "tricks=[instance_noise]",
                "tricks.instance_noise.sigma=0.5", "tricks.instance_noise.anneal_iterations=4",
                "tricks.instance_noise.seed=7", iterations=2)
    for prefix in ("generator.", "discriminator."):
        assert differ(players(base.final, prefix), players(noisy.final, prefix))
    # Clean inputs: the real batches (the same data stream as without the trick) and G's
    # outputs of this run; D steps see (real, fake), G steps G's fake, twice.
    clean = [base.d_calls[0].input, noisy.g_calls[0].output, noisy.g_calls[1].output,
             base.d_calls[3].input, noisy.g_calls[2].output, noisy.g_calls[3].output]
    sigmas = [0.5] * 3 + [0.5 * (1 - 1 / 4)] * 3  # sigma_t = sigma (1 - t / T)
    gen = torch.Generator().manual_seed(7)
    assert len(noisy.d_calls) == 6
    for call, x, sigma in zip(noisy.d_calls, clean, sigmas, strict=True):
        noise = torch.randn(x.shape, generator=gen)
        assert_close(call.input, x + sigma * noise)
    assert [noisy.logged[t]["train/instance_noise/sigma"] for t in (1, 2)] == pytest.approx(
        [0.5, 0.375], rel=1e-12)
    assert not any(k.startswith("train/instance_noise") for k in base.logged[1])
