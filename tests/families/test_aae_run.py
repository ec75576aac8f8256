"""The adversarial autoencoder through the real run: ganlab-train's adapter counts its
iterations, logs, checkpoints and resumes it bit-exactly (ganlab.families.aae)."""

from __future__ import annotations

from pathlib import Path

import pytest
from family_helpers import check_resume, checkpoint_roles, picture_kinds

from ganlab.app.train import train

SMALL = ["model=aae", "data=mnist_offline", "data.held_out=0.1", "model.encoder.hidden_dim=32",
         "model.decoder.hidden_dim=32", "model.discriminator.hidden_dim=32",
         "train.batch_size=16", "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "trainer.deterministic=true"]


def test_twenty_iterations_report_the_families_metrics(make_cfg, tmp_path: Path) -> None:
    pytest.importorskip("mlxtend")
    metrics = train(make_cfg(*SMALL, "train.iterations=20", out=tmp_path / "run"))
    assert metrics["iterations"] == 20
    assert {"reconstruction_mse", "mmd2_posterior_prior"} <= set(metrics)
    assert picture_kinds(tmp_path / "run") == ["codes", "prior_samples", "reconstructions",
                                               "samples"]
    assert checkpoint_roles(tmp_path / "run") == {"encoder", "decoder", "discriminator"}


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, tmp_path: Path
                                                               ) -> None:
    pytest.importorskip("mlxtend")
    check_resume(make_cfg, tmp_path, SMALL, "encoder")
