"""Resuming from a checkpoint continues exactly: N + N iterations == 2N iterations, bit for bit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.app.train import train


def final_state(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def perturbed_copy(ckpt: Path, out: Path) -> Path:
    """``ckpt`` with one generator weight moved by 0.5: a resume that reads its checkpoint
    must then end elsewhere (every half of these runs has the same seed, so a resume that
    ignored the checkpoint and trained from scratch would also end bit-identical)."""
    checkpoint = torch.load(ckpt, weights_only=True)
    key = next(k for k in checkpoint["state_dict"] if k.startswith("generator."))
    checkpoint["state_dict"][key].view(-1)[0] += 0.5
    torch.save(checkpoint, out)
    return out


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def assert_discriminators_differ(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """D never saw the perturbed generator weight directly: it differs only if training went on
    from the checkpoint."""
    assert a.keys() == b.keys()
    assert not all(torch.equal(a[k], b[k]) for k in a if k.startswith("discriminator."))


@pytest.mark.parametrize("k", [1, 2])
def test_resume_mid_run_is_bit_identical(make_cfg, tmp_path, k: int) -> None:
    common = [f"train.d_steps={k}", "metrics.every_n_iterations=0", "trainer.deterministic=true",
              "callbacks.checkpoint.every_n_iterations=6",
              "callbacks.checkpoint.keep_every_n_iterations=6"]
    full = tmp_path / "full"
    train(make_cfg("train.iterations=12", *common, out=full))
    resumed = tmp_path / "resumed"
    ckpt = full / "checkpoints" / "iter_6.ckpt"  # resumed mid-run from iteration 6
    metrics = train(make_cfg("train.iterations=12", *common, f"ckpt_path={ckpt}", out=resumed))
    assert metrics["iterations"] == 12
    a = final_state(full / "checkpoints" / "last.ckpt")
    assert_same(a, final_state(resumed / "checkpoints" / "last.ckpt"))
    # Control: the same resume from a perturbed checkpoint ends elsewhere.
    control = tmp_path / "control"
    bad = perturbed_copy(ckpt, tmp_path / "perturbed.ckpt")
    train(make_cfg("train.iterations=12", *common, f"ckpt_path={bad}", out=control))
    assert_discriminators_differ(a, final_state(control / "checkpoints" / "last.ckpt"))


def test_resume_from_the_end_of_a_shorter_run(make_cfg, tmp_path) -> None:
    common = ["metrics.every_n_iterations=0", "trainer.deterministic=true"]
    full, half, rest = tmp_path / "full", tmp_path / "half", tmp_path / "rest"
    train(make_cfg("train.iterations=10", *common, out=full))
    train(make_cfg("train.iterations=5", *common, out=half))
    ckpt = half / "checkpoints" / "last.ckpt"
    train(make_cfg("train.iterations=10", *common, f"ckpt_path={ckpt}", out=rest))
    a = final_state(full / "checkpoints" / "last.ckpt")
    assert_same(a, final_state(rest / "checkpoints" / "last.ckpt"))
    control = tmp_path / "control"
    bad = perturbed_copy(ckpt, tmp_path / "perturbed.ckpt")
    train(make_cfg("train.iterations=10", *common, f"ckpt_path={bad}", out=control))
    assert_discriminators_differ(a, final_state(control / "checkpoints" / "last.ckpt"))


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
