"""The best toy presets compose and train (their full bar is checked by benchmarks/toy_table.py)."""

from __future__ import annotations

import pytest

from ganlab.app.train import train


@pytest.mark.parametrize(("preset", "data", "modes"), [("toy_grid_best", "ToyGrid", 25),
                                                        ("toy_ring_best", "ToyRing", 8)])
def test_best_preset_composes_and_trains(make_cfg, preset: str, data: str, modes: int) -> None:
    cfg = make_cfg(f"experiment={preset}", "train.iterations=3", "metrics.every_n_iterations=0")
    assert cfg.name == preset
    assert cfg.data._target_ == f"ganlab.data.toy.{data}"
    assert cfg.metrics.num_samples == 200  # the test's FAST override still wins
    metrics = train(cfg)
    assert metrics["iterations"] == 3
    assert metrics["num_modes"] == modes
    assert metrics["num_samples"] == 200
