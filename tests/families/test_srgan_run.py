"""SRGAN and SRResNet through the real run: ganlab-train's adapter counts their iterations,
logs, checkpoints and resumes them bit-exactly (ganlab.families.srgan)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from family_helpers import check_resume, checkpoint_roles, picture_kinds

from ganlab.app.train import train

DATA = ["data=paired_digits", "data.pairing=low_resolution", "data.scale=4",
        "data.downsample=area", "data.held_out=0.1"]
SMALL = [*DATA, "model.generator.width=8", "model.generator.num_blocks=1",
         "train.batch_size=16", "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "trainer.deterministic=true"]
D_SMALL = ["model.discriminator.width=4", "model.discriminator.hidden=16"]
METRICS = {f"{prefix}{name}" for prefix in ("", "bicubic_")
           for name in ("l1", "psnr", "ssim", "accuracy_outputs", "classifier_fid")}


@pytest.mark.parametrize(("model", "roles"), [("srgan", {"generator", "discriminator"}),
                                              ("srresnet", {"generator"})])
def test_twenty_iterations_report_the_families_metrics(make_cfg, classifiers, tmp_path: Path,
                                                       model: str, roles: set[str]) -> None:
    small = [*SMALL, *D_SMALL] if model == "srgan" else SMALL
    metrics = train(make_cfg(f"model={model}", *small, "train.iterations=20",
                             out=tmp_path / "run"))
    assert metrics["iterations"] == 20
    assert METRICS | {"accuracy_targets"} <= set(metrics)
    assert all(metrics[k] == metrics[k] for k in METRICS)  # not NaN
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["protocol"]["num_held_out"] == 100
    assert picture_kinds(tmp_path / "run") == ["samples", "super_resolution"]
    assert checkpoint_roles(tmp_path / "run") == roles


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, classifiers,
                                                               tmp_path: Path) -> None:
    check_resume(make_cfg, tmp_path, ["model=srgan", *SMALL, *D_SMALL], "generator")
