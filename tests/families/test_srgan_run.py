"""SRGAN and SRResNet through the real run: ganlab-train's adapter counts their iterations,
logs, checkpoints and resumes them bit-exactly (ganlab.families.srgan)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganlab.app.train import train

DATA = ["data=paired_digits", "data.pairing=low_resolution", "data.scale=4",
        "data.downsample=area", "data.held_out=0.1"]
SMALL = [*DATA, "model.generator.width=8", "model.generator.num_blocks=1",
         "train.batch_size=16", "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "trainer.deterministic=true"]
D_SMALL = ["model.discriminator.width=4", "model.discriminator.hidden=16"]
METRICS = {f"{prefix}{name}" for prefix in ("", "bicubic_")
           for name in ("l1", "psnr", "ssim", "accuracy_outputs", "classifier_fid")}


def state(run: Path, name: str = "last.ckpt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / name, weights_only=True)["state_dict"]


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
    assert sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "run" / "samples").iterdir()) \
        == ["samples", "super_resolution"]
    assert {k.split(".")[0] for k in state(tmp_path / "run")} == roles


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, classifiers,
                                                               tmp_path: Path) -> None:
    keep = ["callbacks.checkpoint.every_n_iterations=3",
            "callbacks.checkpoint.keep_every_n_iterations=3"]
    small = ["model=srgan", *SMALL, *D_SMALL, "train.iterations=6"]
    full, resumed, perturbed = tmp_path / "full", tmp_path / "resumed", tmp_path / "perturbed"
    train(make_cfg(*small, *keep, out=full))
    middle = full / "checkpoints" / "iter_3.ckpt"
    train(make_cfg(*small, f"ckpt_path={middle}", out=resumed))
    a, b = state(full), state(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Control: one weight of the checkpoint changed, so a resume that ignored it would match.
    ckpt = torch.load(middle, weights_only=False)
    key = next(k for k in ckpt["state_dict"]
               if k.startswith("generator.") and k.endswith("weight"))
    ckpt["state_dict"][key].view(-1)[0] += 0.5
    torch.save(ckpt, tmp_path / "changed.ckpt")
    train(make_cfg(*small, f"ckpt_path={tmp_path / 'changed.ckpt'}", out=perturbed))
    c = state(perturbed)
    assert not torch.equal(a[key], c[key])
