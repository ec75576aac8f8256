"""GAWWN through the real run: ganlab-train's adapter counts its iterations, logs, measures,
draws its box overlays, checkpoints and resumes it bit-exactly (ganlab.families.gawwn)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganlab.app.train import train

SMALL = ["experiment=gawwn_mnist_offline", "model.generator.width=4",
         "model.discriminator.width=4", "model.embed_dim=4", "model.latent_dim=8",
         "train.batch_size=16", "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "trainer.deterministic=true"]


def state(run: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / name, weights_only=True)["state_dict"]


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
    assert sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "run" / "samples").iterdir()) \
        == ["box_overlays", "class_at_boxes", "samples"]
    assert {k.split(".")[0] for k in state(tmp_path / "run")} == {"generator", "discriminator"}


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, classifiers,
                                                               tmp_path: Path) -> None:
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
    key = next(k for k in ckpt["state_dict"]
               if k.startswith("generator.") and k.endswith("weight"))
    ckpt["state_dict"][key].view(-1)[0] += 0.5
    torch.save(ckpt, tmp_path / "changed.ckpt")
    train(make_cfg(*SMALL, "train.iterations=6", f"ckpt_path={tmp_path / 'changed.ckpt'}",
                   out=perturbed))
    c = state(perturbed)
    assert not torch.equal(a[key], c[key])
