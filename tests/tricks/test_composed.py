"""composed: its formulas by hand and its behaviour in short real runs."""

from __future__ import annotations

from pathlib import Path

import torch

from ganlab.app.train import train
from tricks.unit_helpers import (
    QUICK,
    last_state,
)


def test_composed_tricks_run_every_hook(make_cfg, tmp_path) -> None:
    """Each trick alone through the real step: tests/tricks/. Composed, dropping any one of
    them (here the last, r1) changes the run."""
    names = ["instance_noise", "label_smoothing", "historical_averaging", "r1"]
    quick = ["train.iterations=4", "metrics.every_n_iterations=0"]
    cfg = make_cfg(f"tricks=[{','.join(names)}]", *quick, out=tmp_path / "all")
    assert list(cfg.tricks) == names
    assert train(cfg)["iterations"] == 4
    train(make_cfg(f"tricks=[{','.join(names[:-1])}]", *quick, out=tmp_path / "some"))
    a = torch.load(tmp_path / "all" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "some" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert not all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_stateful_tricks_resume_bit_identically(make_cfg, tmp_path) -> None:
    """instance_noise's generator and historical_averaging's means come back from the
    checkpoint: 4 + 4 iterations == 8 iterations, bit for bit."""
    common = ["tricks=[instance_noise,historical_averaging]", "tricks.instance_noise.sigma=0.5",
              "train.iterations=8", "metrics.every_n_iterations=0", "trainer.deterministic=true",
              "callbacks.checkpoint.every_n_iterations=4",
              "callbacks.checkpoint.keep_every_n_iterations=4"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    train(make_cfg(*common, out=full))
    ckpt = full / "checkpoints" / "iter_4.ckpt"
    saved = torch.load(ckpt, weights_only=True)["ganlab"]["family"]["plugins"]
    assert int(saved["historical_averaging"]["discriminator"]["updates"]) == 4
    assert saved["instance_noise"]["device"] == "cpu"
    train(make_cfg(*common, f"ckpt_path={ckpt}", out=resumed))
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    ta, tb = a["ganlab"]["family"]["plugins"], b["ganlab"]["family"]["plugins"]
    assert torch.equal(ta["instance_noise"]["state"], tb["instance_noise"]["state"])
    for player in ("discriminator", "generator"):
        ma, mb = ta["historical_averaging"][player], tb["historical_averaging"][player]
        assert int(ma["updates"]) == int(mb["updates"]) == 8
        for name in ma["means"]:
            assert torch.equal(ma["means"][name], mb["means"][name]), name


def test_composed_network_tricks_real_run(make_cfg, tmp_path: Path) -> None:
    out = tmp_path / "composed"
    cfg = make_cfg("tricks=[minibatch_discrimination,spectral_norm,ema,ttur]", *QUICK, out=out)
    assert list(cfg.tricks) == ["minibatch_discrimination", "spectral_norm", "ema", "ttur"]
    metrics = train(cfg)
    assert metrics["iterations"] == 4
    state = last_state(out)
    assert "discriminator.mbd.T" in state
    assert "discriminator.head_linear.parametrizations.weight.original" in state
    assert any(k.startswith("generator_ema.") for k in state)
