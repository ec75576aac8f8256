"""instance_noise through the real step: every input of D, real or fake, in D's and G's steps,
gets sigma_t times the trick's own seeded N(0, 1) noise."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from ganlab.core.errors import GanlabError
from ganlab.tricks.instance_noise import InstanceNoise
from tricks.runs import baseline, differ, players, run
from tricks.unit_helpers import (
    roundtrip,
)


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


# -- formulas by hand -------------------------------------------
def test_instance_noise_schedule() -> None:
    linear = InstanceNoise(sigma=0.2, anneal_iterations=100)
    hand = {0: 0.2, 25: 0.15, 50: 0.1, 99: 0.002, 100: 0.0, 250: 0.0}
    assert [linear.sigma_at(t) for t in hand] == pytest.approx(list(hand.values()), abs=1e-15)
    constant = InstanceNoise(sigma=0.2, anneal_iterations=100, schedule="constant")
    assert [constant.sigma_at(t) for t in hand] == [0.2] * len(hand)
    x = torch.zeros(4, 2)
    linear.d_input(x, 25)
    assert linear.log_values() == {"sigma": pytest.approx(0.15, abs=1e-15)}
    with pytest.raises(GanlabError, match="schedule"):
        InstanceNoise(schedule="cosine")


@pytest.mark.parametrize("t", [0, 50])
def test_instance_noise_statistics(t: int) -> None:
    trick = InstanceNoise(sigma=0.2, anneal_iterations=100)
    sigma_t = 0.2 * (1 - t / 100)
    n = 100_000
    x = torch.linspace(-3, 3, n, dtype=torch.float64).reshape(n // 2, 2)
    noise = (trick.d_input(x, t) - x).flatten()
    # 5 standard errors: SE(mean) = sigma / sqrt(n), SE(std) ~ sigma / sqrt(2n).
    assert abs(float(noise.mean())) < 5 * sigma_t / math.sqrt(n)
    assert abs(float(noise.std()) - sigma_t) < 5 * sigma_t / math.sqrt(2 * n)
    # Fresh noise on every call.
    assert not torch.equal(trick.d_input(x, t), trick.d_input(x, t))


def test_instance_noise_is_sigma_t_times_a_seeded_standard_normal() -> None:
    trick = InstanceNoise(sigma=0.4, anneal_iterations=8, seed=11)
    x = torch.randn(6, 3)
    reference = torch.Generator().manual_seed(11)
    for t in (0, 2, 6):  # sigma_t = 0.4, 0.3, 0.1
        expected = x + 0.4 * (1 - t / 8) * torch.randn(x.shape, generator=reference)
        assert_close(trick.d_input(x, t), expected, atol=1e-7, rtol=0)


def test_instance_noise_stops_after_annealing() -> None:
    trick = InstanceNoise(sigma=0.5, anneal_iterations=10)
    x = torch.randn(8, 3)
    assert not torch.equal(trick.d_input(x, 9), x)
    for t in (10, 11, 1000):
        assert torch.equal(trick.d_input(x, t), x)


def test_instance_noise_keeps_the_graph_to_the_input() -> None:
    x = torch.randn(5, 2, requires_grad=True)
    out = InstanceNoise(sigma=0.3).d_input(x, 0)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(grad, torch.ones_like(x))


def test_instance_noise_state_round_trip() -> None:
    x = torch.zeros(1000, 2)
    a = InstanceNoise(sigma=0.1, seed=7)
    b = InstanceNoise(sigma=0.1, seed=7)
    assert torch.equal(a.d_input(x, 0), b.d_input(x, 0))  # same seed, same stream
    a.d_input(x, 0)
    state = roundtrip(a.state_dict())
    expected = a.d_input(x, 3)
    restored = InstanceNoise(sigma=0.1, seed=7)
    restored.load_state_dict(state)
    assert torch.equal(restored.d_input(x, 3), expected)
    # Without the state a fresh trick would repeat the first draw instead.
    assert not torch.equal(InstanceNoise(sigma=0.1, seed=7).d_input(x, 3), expected)
    # A state that was loaded but not used yet is saved again unchanged.
    again = InstanceNoise(sigma=0.1, seed=7)
    again.load_state_dict(roundtrip(restored.state_dict()))
    resaved = InstanceNoise(sigma=0.1, seed=7)
    resaved.load_state_dict(roundtrip(again.state_dict()))
    assert torch.equal(resaved.d_input(x, 3), restored.d_input(x, 3))
