"""Resuming from a checkpoint continues exactly: N + N iterations == 2N iterations, bit for bit."""

from __future__ import annotations

import pytest
import torch

from ganlab.app.train import train


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


def test_resume_reads_the_checkpoint_twice_and_only_with_weights_only(
    make_cfg, tmp_path, monkeypatch
) -> None:
    first = tmp_path / "first"
    train(make_cfg("train.iterations=3", "metrics.every_n_iterations=0", out=first))
    ckpt = first / "checkpoints" / "last.ckpt"
    calls: list[tuple[str, object]] = []
    real_load = torch.load

    def counting_load(f, *args, **kwargs):
        if str(f).endswith(".ckpt"):
            calls.append((str(f), kwargs.get("weights_only")))
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    train(make_cfg("train.iterations=5", "metrics.every_n_iterations=0", f"ckpt_path={ckpt}",
                   out=tmp_path / "second"))
    # One check before anything is written, one by Lightning's resume (SafeCheckpointIO).
    assert calls == [(str(ckpt), True), (str(ckpt), True)]


def test_lightning_resume_refuses_pickled_objects(make_cfg, tmp_path) -> None:
    import argparse

    from ganlab.app.build import build_trainer
    from ganlab.core.checkpoints import SafeCheckpointIO
    from ganlab.core.errors import GanlabError

    trainer = build_trainer(make_cfg("train.iterations=2"))
    assert isinstance(trainer.strategy.checkpoint_io, SafeCheckpointIO)
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"ganlab": {"payload": argparse.Namespace(a=1)}}, unsafe)
    with pytest.raises(GanlabError, match="holds pickled Python objects"):
        trainer.strategy.checkpoint_io.load_checkpoint(unsafe)


def test_the_wandb_run_id_is_kept_beside_the_checkpoints(make_cfg, tmp_path) -> None:
    out = tmp_path / "run"
    train(make_cfg("train.iterations=2", "metrics.every_n_iterations=0", "logger=wandb",
                   out=out))
    run_id = (out / "checkpoints" / "wandb_id.txt").read_text().strip()
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and runs[0].name.endswith(f"-{run_id}")
