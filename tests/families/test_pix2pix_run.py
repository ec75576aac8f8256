"""pix2pix through the real run: ganlab-train's adapter counts its iterations, logs, writes its
input | output | target pictures, checkpoints and resumes it bit-exactly
(ganlab.families.pix2pix)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ganlab.app.train import train

SMALL = ["experiment=pix2pix_mnist_offline", "model.generator.base_width=8",
         "model.discriminator.base_width=8", "train.batch_size=16",
         "metrics.every_n_iterations=0", "metrics.num_samples=100", "trainer.deterministic=true"]


def state(run: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / name, weights_only=True)["state_dict"]


@pytest.mark.parametrize("baseline", [False, True], ids=["pix2pix", "l1_only"])
def test_twenty_iterations_report_the_families_metrics(make_cfg, classifiers, tmp_path: Path,
                                                       baseline: bool) -> None:
    extra = ["model.adversarial_weight=0"] if baseline else []
    metrics = train(make_cfg(*SMALL, *extra, "train.iterations=20", out=tmp_path / "run"))
    assert metrics["iterations"] == 20
    assert {"l1", "psnr", "ssim", "accuracy_outputs", "accuracy_targets", "fid"} <= set(metrics)
    assert 0 < metrics["l1"] < 2 and 0 <= metrics["accuracy_outputs"] <= 1
    assert sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "run" / "samples").iterdir()) \
        == ["samples", "translations"]
    roles = {k.split(".")[0] for k in state(tmp_path / "run")}
    assert roles == ({"generator"} if baseline else {"generator", "discriminator"})


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, classifiers,
                                                               tmp_path: Path) -> None:
    plain = SMALL
    keep = ["callbacks.checkpoint.every_n_iterations=3",
            "callbacks.checkpoint.keep_every_n_iterations=3"]
    full, resumed, perturbed = tmp_path / "full", tmp_path / "resumed", tmp_path / "perturbed"
    train(make_cfg(*plain, *keep, "train.iterations=6", out=full))
    middle = full / "checkpoints" / "iter_3.ckpt"
    train(make_cfg(*plain, "train.iterations=6", f"ckpt_path={middle}", out=resumed))
    a, b = state(full), state(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ckpt = torch.load(middle, weights_only=False)
    key = next(k for k in ckpt["state_dict"] if k.startswith("generator.") and
               k.endswith("weight"))
    ckpt["state_dict"][key].view(-1)[0] += 0.5
    torch.save(ckpt, tmp_path / "changed.ckpt")
    train(make_cfg(*plain, "train.iterations=6", f"ckpt_path={tmp_path / 'changed.ckpt'}",
                   out=perturbed))
    c = state(perturbed)
    assert not torch.equal(a[key], c[key])


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
