"""The adversarial autoencoder through the real run: ganlab-train's adapter counts its
iterations, logs, checkpoints and resumes it bit-exactly (ganlab.families.aae)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.app.train import train

SMALL = ["model=aae", "data=mnist_offline", "data.held_out=0.1", "model.encoder.hidden_dim=32",
         "model.decoder.hidden_dim=32", "model.discriminator.hidden_dim=32",
         "train.batch_size=16", "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "trainer.deterministic=true"]


def state(run: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / name, weights_only=True)["state_dict"]


def test_twenty_iterations_report_the_families_metrics(make_cfg, tmp_path: Path) -> None:
    pytest.importorskip("mlxtend")
    metrics = train(make_cfg(*SMALL, "train.iterations=20", out=tmp_path / "run"))
    assert metrics["iterations"] == 20
    assert {"reconstruction_mse", "mmd2_posterior_prior"} <= set(metrics)
    assert sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "run" / "samples").iterdir()) \
        == ["codes", "prior_samples", "reconstructions", "samples"]
    assert {k.split(".")[0] for k in state(tmp_path / "run")} == {"encoder", "decoder",
                                                                  "discriminator"}


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, tmp_path: Path
                                                               ) -> None:
    pytest.importorskip("mlxtend")
    keep = ["callbacks.checkpoint.every_n_iterations=3",
            "callbacks.checkpoint.keep_every_n_iterations=3"]
    full, resumed, perturbed = tmp_path / "full", tmp_path / "resumed", tmp_path / "perturbed"
    train(make_cfg(*SMALL, *keep, "train.iterations=6", out=full))
    middle = full / "checkpoints" / "iter_3.ckpt"
    train(make_cfg(*SMALL, "train.iterations=6", f"ckpt_path={middle}", out=resumed))
    a, b = state(full), state(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Control: one weight of the checkpoint changed, so a resume that ignored it would match.
    ckpt = torch.load(middle, weights_only=False)
    key = next(k for k in ckpt["state_dict"] if k.startswith("encoder.") and k.endswith("weight"))
    ckpt["state_dict"][key].view(-1)[0] += 0.5
    torch.save(ckpt, tmp_path / "changed.ckpt")
    train(make_cfg(*SMALL, "train.iterations=6", f"ckpt_path={tmp_path / 'changed.ckpt'}",
                   out=perturbed))
    c = state(perturbed)
    assert not torch.equal(a[key], c[key])
