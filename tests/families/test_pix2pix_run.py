"""pix2pix through the real run: ganlab-train's adapter counts its iterations, logs, writes its
input | output | target pictures, checkpoints and resumes it bit-exactly
(ganlab.families.pix2pix)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from family_helpers import check_resume, checkpoint_roles, picture_kinds

from ganlab.app.train import train

SMALL = ["experiment=pix2pix_mnist_offline", "model.generator.base_width=8",
         "model.discriminator.base_width=8", "train.batch_size=16",
         "metrics.every_n_iterations=0", "metrics.num_samples=100", "trainer.deterministic=true"]


@pytest.mark.parametrize("baseline", [False, True], ids=["pix2pix", "l1_only"])
def test_twenty_iterations_report_the_families_metrics(make_cfg, classifiers, tmp_path: Path,
                                                       baseline: bool) -> None:
    extra = ["model.adversarial_weight=0"] if baseline else []
    metrics = train(make_cfg(*SMALL, *extra, "train.iterations=20", out=tmp_path / "run"))
    assert metrics["iterations"] == 20
    assert {"l1", "psnr", "ssim", "accuracy_outputs", "accuracy_targets", "fid"} <= set(metrics)
    assert 0 < metrics["l1"] < 2 and 0 <= metrics["accuracy_outputs"] <= 1
    assert picture_kinds(tmp_path / "run") == ["samples", "translations"]
    assert checkpoint_roles(tmp_path / "run") == (
        {"generator"} if baseline else {"generator", "discriminator"})


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, classifiers,
                                                               tmp_path: Path) -> None:
    check_resume(make_cfg, tmp_path, SMALL, "generator")


def test_a_run_on_the_papers_facades_layout(make_cfg, tmp_path: Path) -> None:
    """data=facades (a fake folder of A|B jpgs) through train(): 3-channel label map -> photo,
    scored by L1/PSNR/SSIM (no labels, so no classifier accuracy)."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 6), ("test", 4)):
        folder = tmp_path / "data" / "facades" / split
        folder.mkdir(parents=True)
        for i in range(n):
            pixels = torch.randint(0, 256, (16, 32, 3), generator=g, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(folder / f"{i}.jpg")
    metrics = train(make_cfg("model=pix2pix", "data=facades", "data.resolution=16",
                             f"paths.data_dir={tmp_path / 'data'}", "train.batch_size=2",
                             "model.generator.base_width=4", "model.discriminator.base_width=4",
                             "model.num_pictures=4", "train.iterations=3",
                             "metrics.every_n_iterations=0", out=tmp_path / "run"))
    assert metrics["iterations"] == 3
    assert {"l1", "psnr", "ssim"} <= set(metrics) and "accuracy_outputs" not in metrics
    assert any(p.name.startswith("translations") for p in (tmp_path / "run" / "samples").iterdir())
