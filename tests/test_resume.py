"""Resuming from a checkpoint continues exactly: N + N iterations == 2N iterations, bit for bit."""

from __future__ import annotations

import pytest
import torch

from ganlab.train import train


def final_state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.parametrize("k", [1, 2])
def test_resume_mid_run_is_bit_identical(make_cfg, tmp_path, k: int) -> None:
    common = [f"train.d_steps={k}", "metrics.every_n_iterations=0", "trainer.deterministic=true",
              "callbacks.checkpoint.every_n_iterations=6",
              "callbacks.checkpoint.keep_every_n_iterations=6"]
    full = tmp_path / "full"
    train(make_cfg("train.iterations=12", *common, out=full))
    first = tmp_path / "first"
    train(make_cfg("train.iterations=5", *common, out=first))  # a run stopped early...
    resumed = tmp_path / "resumed"
    ckpt = full / "checkpoints" / "iter_6.ckpt"  # ...and one resumed mid-run from iteration 6
    metrics = train(make_cfg("train.iterations=12", *common, f"ckpt_path={ckpt}", out=resumed))
    assert metrics["iterations"] == 12
    a = final_state(full / "checkpoints" / "last.ckpt")
    b = final_state(resumed / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # A shorter run really differs (the comparison can fail).
    c = final_state(first / "checkpoints" / "last.ckpt")
    assert not all(torch.equal(a[key], c[key]) for key in a)


def test_resume_from_the_end_of_a_shorter_run(make_cfg, tmp_path) -> None:
    common = ["metrics.every_n_iterations=0", "trainer.deterministic=true"]
    full, half, rest = tmp_path / "full", tmp_path / "half", tmp_path / "rest"
    train(make_cfg("train.iterations=10", *common, out=full))
    train(make_cfg("train.iterations=5", *common, out=half))
    ckpt = half / "checkpoints" / "last.ckpt"
    train(make_cfg("train.iterations=10", *common, f"ckpt_path={ckpt}", out=rest))
    a = final_state(full / "checkpoints" / "last.ckpt")
    b = final_state(rest / "checkpoints" / "last.ckpt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
