"""GAWWN through the real run: ganlab-train's adapter counts its iterations, logs, measures,
draws its box overlays, checkpoints and resumes it bit-exactly (ganlab.families.gawwn)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from family_helpers import check_resume, checkpoint_roles, picture_kinds

from ganlab.app.train import train

SMALL = ["experiment=gawwn_mnist_offline", "model.generator.width=4",
         "model.discriminator.width=4", "model.embed_dim=4", "model.latent_dim=8",
         "train.batch_size=16", "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "trainer.deterministic=true"]


@pytest.mark.parametrize("where", ["true", "false"], ids=["box", "class_only"])
def test_twenty_iterations_report_the_families_metrics(make_cfg, classifiers, tmp_path: Path,
                                                       where: str) -> None:
    metrics = train(make_cfg(*SMALL, f"model.where={where}", "train.iterations=20",
                             out=tmp_path / "run"))
    assert metrics["iterations"] == 20
    assert {"crop_accuracy", "location_iou", "crop_fid",
            *(f"crop_accuracy_{k}" for k in range(10))} <= set(metrics)
    assert "fid" not in metrics  # the whole-canvas image metrics are not run
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["protocol"]["where"] is (where == "true")
    assert saved["protocol"]["num_conditions"] == 500
    assert picture_kinds(tmp_path / "run") == ["box_overlays", "class_at_boxes", "samples"]
    assert checkpoint_roles(tmp_path / "run") == {"generator", "discriminator"}


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, classifiers,
                                                               tmp_path: Path) -> None:
    check_resume(make_cfg, tmp_path, SMALL, "generator")
