"""benchmarks/class_mix_fid.py: the class counts, the per-class draw and the FID it reports."""

from __future__ import annotations

import pytest
import torch


def test_counts_follow_the_histogram_and_sum_to_n(bench) -> None:
    mix = bench("class_mix_fid")
    # 10 split 1 : 1 : 1 is 3.33 each; the largest remainders are equal, the first wins.
    assert mix.counts_for(torch.tensor([1, 1, 1]), 10).tolist() == [4, 3, 3]
    # 2,500 in the proportions 543 : 324 : 633 (sum 1,500): 905, 540, 1,055 exactly.
    assert mix.counts_for(torch.tensor([543, 324, 633]), 2500).tolist() == [905, 540, 1055]
    # 7 in 0.5 : 0.3 : 0.2 = 3.5, 2.1, 1.4: floors 3, 2, 1 and the one left goes to 3.5.
    assert mix.counts_for(torch.tensor([5, 3, 2]), 7).tolist() == [4, 2, 1]


def test_the_draw_takes_each_class_from_its_own_pool_members(bench) -> None:
    mix = bench("class_mix_fid")
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 2, 2])
    pool = torch.tensor([1, 2, 3, 4, 6])  # classes 1, 0, 2, 1, 2
    idx = mix.draw_per_class(labels, pool, torch.tensor([3, 1, 2]),
                             torch.Generator().manual_seed(0))
    assert idx.tolist()[:3] == [2, 2, 2]  # the pool's only zero, three times
    assert set(idx.tolist()[3:4]) <= {1, 4} and set(idx.tolist()[4:]) <= {3, 6}
    with pytest.raises(SystemExit, match="no real image of class 0"):
        mix.draw_per_class(labels, torch.tensor([1, 3]), torch.tensor([1, 0, 1]),
                           torch.Generator().manual_seed(0))


def test_fid_of_two_feature_sets_is_the_closed_form(bench) -> None:
    mix = bench("class_mix_fid")
    a = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    # b = a shifted by (1, 0): equal covariances, so FID = |mu_a - mu_b|^2 = 1.
    assert mix.fid(a, a + torch.tensor([1.0, 0.0])) == pytest.approx(1.0, abs=1e-9)
    # b = 2 a: sigma_b = 4 sigma_a, sigma_a = 4/3 I; FID = |(1,1)|^2 + 2 (4/3 + 16/3 - 2 * 8/3)
    assert mix.fid(a, 2 * a) == pytest.approx(2.0 + 2 * (4 / 3), rel=1e-9)
