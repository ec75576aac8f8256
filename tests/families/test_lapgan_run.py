"""LAPGAN through the real run: ganlab-train's adapter counts its iterations (six optimizer steps
each), measures the pyramid's final samples with the lab classifier, draws the level-by-level
picture, checkpoints and resumes it bit-exactly (ganlab.families.lapgan)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from family_helpers import check_resume, checkpoint_roles

from ganlab.app.train import train

SMALL = ["experiment=lapgan_mnist_offline", "model.coarse.generator.hidden_dim=16",
         "model.coarse.discriminator.hidden_dim=16", "model.residual.generator.width=4",
         "model.residual.discriminator.width=4", "train.batch_size=16",
         "metrics.num_samples=100", "trainer.deterministic=true"]

ROLES = {f"{kind}_{k}" for k in range(3) for kind in ("generator", "discriminator")}


def test_twenty_iterations_measure_the_pyramids_samples(make_cfg, tmp_path: Path,
                                                        classifiers) -> None:
    run = tmp_path / "run"
    metrics = train(make_cfg(*SMALL, "train.iterations=20", "metrics.every_n_iterations=10",
                             "logger=csv", out=run))
    assert metrics["iterations"] == 20 and metrics["num_samples"] == 100
    assert {"fid", "kid", "precision", "recall"} <= set(metrics)
    written = json.loads((run / "metrics.json").read_text())
    assert written["protocol"]["extractor"] == "classifier"
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "pyramid_0000010.png", "pyramid_0000020.png", "samples_0000010.png",
        "samples_0000020.png"]
    assert checkpoint_roles(run) == ROLES
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["ganlab"]["iteration"] == 20 and ckpt["global_step"] == 6 * 20
    # Every level's costs and D outputs, logged per iteration (train.log_every_n_iterations=5).
    header = next(run.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    for k in range(3):
        for key in ("d_loss", "g_loss", "D_real", "D_fake"):
            assert f"train/{key}_{k}" in header, header
    assert {"train/d_loss", "train/g_loss"} <= set(header)


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, tmp_path: Path
                                                               ) -> None:
    pytest.importorskip("mlxtend")
    small = [*SMALL, "~extractor", "metrics.every_n_iterations=0"]
    # The control: one weight of the finest generator changed.
    check_resume(make_cfg, tmp_path, small, "generator_0")


def test_the_cifar10_preset_without_its_files_names_the_folder(make_cfg, tmp_path: Path) -> None:
    """The paper's dataset: torchvision's CIFAR-10 loader (data.download=true when online); with
    no files, one line naming the folder they go in."""
    from ganlab.core.errors import GanlabError

    empty = tmp_path / "empty"
    with pytest.raises(GanlabError, match=rf"^CIFAR10 not found in {empty}/cifar-10-batches-py "
                                          r"\(needs .*\); run with data.download=true") as err:
        train(make_cfg("experiment=lapgan_cifar10", f"paths.data_dir={empty}"))
    assert "\n" not in str(err.value)
