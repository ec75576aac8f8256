"""Gaussian mixture datamodules: geometry, sample statistics, determinism of the stream."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from ganlab.data import Gaussian1D, GaussianMixtureDataModule, MinibatchStream, ToyGrid, ToyRing

BASE = {"batch_size": 64, "d_steps": 1, "iterations": 10, "seed": 0}


def test_ring_has_eight_distinct_angles_on_the_unit_circle() -> None:
    dm = ToyRing(**BASE)
    c = dm.mode_centers
    assert c.shape == (8, 2) and c.dtype == torch.float32
    torch.testing.assert_close(c.norm(dim=1), torch.ones(8), atol=1e-6, rtol=0)
    angles = torch.atan2(c[:, 1], c[:, 0]).remainder(2 * math.pi)
    expected = 2 * math.pi * torch.arange(8) / 8
    torch.testing.assert_close(angles, expected.float(), atol=1e-5, rtol=0)
    # Pairwise distances between neighbours are all 2 sin(π/8); no two modes coincide.
    dist = torch.cdist(c, c) + torch.eye(8) * 10
    assert dist.min().item() == pytest.approx(2 * math.sin(math.pi / 8), abs=1e-5)
    assert dm.data_shape == (2,) and dm.num_classes == 8 and dm.mode_std == 0.01


def test_ring_radius_and_mode_count_are_parameters() -> None:
    dm = ToyRing(radius=2.0, num_modes=5, std=0.02, **BASE)
    assert dm.mode_centers.shape == (5, 2)
    torch.testing.assert_close(dm.mode_centers.norm(dim=1), torch.full((5,), 2.0))
    assert dm.mode_std == 0.02


def test_grid_has_the_25_centers() -> None:
    dm = ToyGrid(**BASE)
    got = {tuple(p) for p in dm.mode_centers.tolist()}
    want = {(float(a), float(b)) for a in (-4, -2, 0, 2, 4) for b in (-4, -2, 0, 2, 4)}
    assert got == want and dm.mode_centers.shape == (25, 2)
    assert dm.mode_std == 0.05 and dm.num_classes == 25


def test_gaussian_1d_shape_and_means_from_a_list() -> None:
    dm = Gaussian1D(means=[-3.0, 0.0, 3.0], std=0.25, **BASE)
    assert dm.data_shape == (1,) and dm.num_classes == 3
    torch.testing.assert_close(dm.mode_centers, torch.tensor([[-3.0], [0.0], [3.0]]))
    x, y = dm.sample(0)
    assert x.shape == (64, 1) and y.shape == (64,)


@pytest.mark.parametrize("make", [lambda: ToyRing(**BASE), lambda: ToyGrid(**BASE)])
def test_sample_statistics_per_mode(make) -> None:
    dm = make()
    dm.batch_size = 4000
    x, y = dm.sample(3)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.shape == (4000, 2) and y.shape == (4000,)
    m = dm.num_classes
    counts = torch.bincount(y, minlength=m)
    assert counts.numel() == m
    # Binomial(4000, 1/M): every count within 5 standard deviations of 4000/M.
    mean, sd = 4000 / m, math.sqrt(4000 * (1 / m) * (1 - 1 / m))
    assert ((counts - mean).abs() < 5 * sd).all(), counts
    for k in range(m):
        xs = x[y == k]
        # Sample mean of ~n points per coordinate: standard error std / sqrt(n); allow 5 of them.
        tol = 5 * dm.mode_std / math.sqrt(len(xs))
        assert (xs.mean(0) - dm.mode_centers[k]).abs().max().item() < tol
        # Pooled per-mode std: relative error well under 15 % for >= 150 points x 2 dims.
        assert xs.sub(dm.mode_centers[k]).std().item() == pytest.approx(dm.mode_std, rel=0.15)
    # Every point lies within 6 std of its own mode.
    assert (x - dm.mode_centers[y]).abs().max().item() < 6 * dm.mode_std


def test_density_integrates_to_one_and_peaks_at_modes() -> None:
    dm = Gaussian1D(**BASE)  # means -2, 2; std 0.5
    grid = torch.linspace(-8, 8, 16001).unsqueeze(1)
    p = dm.density(grid)
    assert p.shape == (16001,)
    integral = torch.trapezoid(p, grid.squeeze(1)).item()
    assert integral == pytest.approx(1.0, abs=1e-4)
    peak = 0.5 / (0.5 * math.sqrt(2 * math.pi))
    assert dm.density(torch.tensor([[2.0]])).item() == pytest.approx(peak, rel=1e-4)
    ring = ToyRing(**BASE)
    # At a center of the ring only that mode contributes: 1/8 * 1 / (2π σ²).
    want = 1 / 8 / (2 * math.pi * 0.01**2)
    assert ring.density(ring.mode_centers[:1]).item() == pytest.approx(want, rel=1e-4)
    # At the origin all 8 modes are at distance 1: log p = -1 / (2σ²) - log(2πσ²), finite even
    # though p itself underflows to 0.
    want_log = -1 / (2 * 0.01**2) - math.log(2 * math.pi * 0.01**2)
    assert ring.log_density(torch.zeros(1, 2)).item() == pytest.approx(want_log, rel=1e-6)
    assert ring.density(torch.zeros(1, 2)).item() == 0.0


def test_sample_n_is_seeded() -> None:
    dm = ToyGrid(**BASE)
    a, b, c = dm.sample_n(500, seed=1), dm.sample_n(500, seed=1), dm.sample_n(500, seed=2)
    assert a.shape == (500, 2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_same_seed_and_index_give_the_same_batch() -> None:
    d1, d2 = ToyRing(**BASE), ToyRing(**BASE)
    x1, y1 = d1.sample(5)
    x2, y2 = d2.sample(5)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = d1.sample(6)
    assert not torch.equal(x1, x3)
    other = ToyRing(**{**BASE, "seed": 1})
    assert not torch.equal(x1, other.sample(5)[0])


def test_resumed_stream_is_the_tail_of_the_full_stream() -> None:
    dm = ToyRing(**BASE)
    full = list(MinibatchStream(dm.sample, iterations=7, d_steps=3, batch_size=16))
    tail = list(MinibatchStream(dm.sample, iterations=7, d_steps=3, batch_size=16, start=4))
    assert len(full) == 7 and len(tail) == 3
    # Without a chunk plan each item is one iteration, in the chunked layout (K = 1, k, B, ...).
    assert full[0][0].shape == (1, 3, 16, 2) and full[0][1].shape == (1, 3, 16)
    for (xa, ya), (xb, yb) in zip(full[4:], tail, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # The k minibatches of one iteration are different draws.
    assert not torch.equal(full[0][0][0, 0], full[0][0][0, 1])


def test_two_ranks_concatenated_equal_one_process_with_the_global_batch() -> None:
    b = 8
    single = ToyGrid(**{**BASE, "batch_size": 2 * b})
    streams = []
    for rank in (0, 1):
        dm = ToyGrid(**{**BASE, "batch_size": b})
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)  # as under a 2-process run
        assert dm.world_size == 2 and dm.rank == rank
        assert dm.sample(0)[0].shape == (2 * b, 2)
        streams.append(
            list(MinibatchStream(dm.sample, 4, d_steps=2, batch_size=b, rank=rank, world_size=2))
        )
    one = list(MinibatchStream(single.sample, 4, d_steps=2, batch_size=2 * b))
    for (x, y), (x0, y0), (x1, y1) in zip(one, *streams, strict=True):
        assert x0.shape == (1, 2, b, 2) and x.shape == (1, 2, 2 * b, 2)
        assert torch.equal(torch.cat([x0, x1], dim=2), x)
        assert torch.equal(torch.cat([y0, y1], dim=2), y)
        assert not torch.equal(x0, x1)


def test_train_dataloader_without_trainer_yields_iteration_batches() -> None:
    dm = ToyRing(**{**BASE, "d_steps": 2, "iterations": 3})
    dm.setup()
    batches = list(dm.train_dataloader())
    assert len(batches) == 3
    x, y = batches[1]
    assert x.shape == (1, 2, 64, 2) and y.shape == (1, 2, 64)
    assert torch.equal(x[0, 0], dm.sample(2)[0]) and torch.equal(x[0, 1], dm.sample(3)[0])


def test_bad_centers_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        GaussianMixtureDataModule(centers=torch.zeros(3), std=1.0, **BASE)
    with pytest.raises(ValueError, match="shape"):
        GaussianMixtureDataModule(centers=[1.0, 2.0], std=1.0, **BASE)
    listed = GaussianMixtureDataModule(centers=[[0, 1], [2, 3]], std=1.0, **BASE)
    torch.testing.assert_close(listed.mode_centers, torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="std"):
        GaussianMixtureDataModule(centers=torch.zeros(2, 2), std=0.0, **BASE)


def test_a_chunked_stream_holds_the_same_iterations(monkeypatch) -> None:
    import ganlab.data.stream as stream

    dm = ToyGrid(batch_size=16, d_steps=2, iterations=9, seed=0)
    dm.setup()
    plain = list(MinibatchStream(dm.sample, iterations=9, d_steps=2, batch_size=16))
    chunked = list(MinibatchStream(dm.sample, iterations=9, d_steps=2, batch_size=16,
                                   chunk=lambda it: 4))
    assert [x.shape[0] for x, _ in chunked] == [4, 4, 1]  # cut at the run's end
    assert torch.equal(torch.cat([x for x, _ in chunked]), torch.cat([x for x, _ in plain]))
    assert torch.equal(torch.cat([y for _, y in chunked]), torch.cat([y for _, y in plain]))
    # One iteration is 2 x 16 points of 2 floats and 2 x 16 labels: 512 bytes; a cap of
    # 1,100 bytes holds 2 of them.
    monkeypatch.setattr(stream, "MAX_CHUNK_BYTES", 1100)
    capped = list(MinibatchStream(dm.sample, iterations=9, d_steps=2, batch_size=16,
                                  chunk=lambda it: 4))
    assert [x.shape[0] for x, _ in capped] == [2, 2, 2, 2, 1]
    assert torch.equal(torch.cat([x for x, _ in capped]), torch.cat([x for x, _ in plain]))
