"""CycleGAN through the real run: ganlab-train's adapter counts its iterations, logs, evaluates
with the lab classifier, draws both directions, checkpoints and resumes it bit-exactly, the
image pools included (ganlab.families.cyclegan)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from family_helpers import (
    check_resume,
    checkpoint_roles,
    checkpoint_state,
    load_checkpoint,
    picture_kinds,
)

from ganlab.app.train import train

SMALL = ["experiment=cyclegan_mnist_offline", "model.generator.width=4",
         "model.generator.num_blocks=1", "model.discriminator.width=4", "model.pool_size=20",
         "train.batch_size=8", "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "trainer.deterministic=true"]


def test_twenty_iterations_report_the_families_metrics(make_cfg, classifiers, tmp_path: Path
                                                       ) -> None:
    metrics = train(make_cfg(*SMALL, "train.iterations=20", out=tmp_path / "run"))
    assert metrics["iterations"] == 20
    assert set(metrics) == {"iterations", "num_samples", "cycle_error_x", "cycle_error_y",
                            "true_error_xy", "true_error_yx", "accuracy_xy", "accuracy_yx",
                            "accuracy_true_xy", "accuracy_x"}
    assert all(0 <= metrics[k] <= 1 for k in ("accuracy_xy", "accuracy_yx", "accuracy_x"))
    protocol = json.loads((tmp_path / "run" / "metrics.json").read_text())["protocol"]
    assert protocol["num_held_out_x"] == 100 and protocol["cycle_weight"] == 10.0
    assert protocol["mapping"] == "3x3 grey dilation (kornia) then 255 - v"
    assert picture_kinds(tmp_path / "run") == ["samples", "translation_xy", "translation_yx"]
    assert checkpoint_roles(tmp_path / "run") == {
        "generator_xy", "generator_yx", "discriminator_y", "discriminator_x"}
    pools = load_checkpoint(tmp_path / "run")["ganlab"]["family"]
    assert pools["pool_y"]["images"].shape == (20, 1, 28, 28)


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, classifiers,
                                                               tmp_path: Path) -> None:
    a, middle = check_resume(make_cfg, tmp_path, SMALL, "generator_xy")
    # By iteration 3 (24 fakes per pool) the pools of 20 already swap.
    pools = torch.load(middle, weights_only=True)["ganlab"]["family"]
    assert pools["pool_x"]["images"].shape[0] == 20
    # Control: the pools are part of the state (changed pools, another run).
    ckpt = torch.load(middle, weights_only=False)
    ckpt["ganlab"]["family"]["pool_y"]["images"].neg_()
    torch.save(ckpt, tmp_path / "pool.ckpt")
    train(make_cfg(*SMALL, "train.iterations=6", f"ckpt_path={tmp_path / 'pool.ckpt'}",
                   out=tmp_path / "pool"))
    d = checkpoint_state(tmp_path / "pool")
    assert not all(torch.equal(a[k], d[k]) for k in a if k.startswith("discriminator_y."))


def test_horse2zebra_runs_on_a_tiny_fake_folder(make_cfg, tmp_path: Path) -> None:
    from data.test_unpaired import write_horse2zebra

    write_horse2zebra(tmp_path / "data")
    metrics = train(make_cfg("model=cyclegan", "data=horse2zebra", "data.resolution=16",
                             f"paths.data_dir={tmp_path / 'data'}", "model.generator.width=4",
                             "model.discriminator.width=4", "train.batch_size=2",
                             "train.iterations=3", "metrics.every_n_iterations=0",
                             out=tmp_path / "run"))
    # Unpaired held-out photos: the cycle errors only.
    assert set(metrics) == {"iterations", "num_samples", "cycle_error_x", "cycle_error_y"}
    assert metrics["iterations"] == 3
    assert picture_kinds(tmp_path / "run") == ["samples", "translation_xy", "translation_yx"]
