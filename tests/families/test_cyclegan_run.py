"""CycleGAN through the real run: ganlab-train's adapter counts its iterations, logs, evaluates
with the lab classifier, draws both directions, checkpoints and resumes it bit-exactly, the
image pools included (ganlab.families.cyclegan)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ganlab.app.train import train

SMALL = ["experiment=cyclegan_mnist_offline", "model.generator.width=4",
         "model.generator.num_blocks=1", "model.discriminator.width=4", "model.pool_size=20",
         "train.batch_size=8", "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "trainer.deterministic=true"]


def checkpoint(run: Path, name: str = "last.ckpt") -> dict:
    return torch.load(run / "checkpoints" / name, weights_only=True)


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
    assert sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "run" / "samples").iterdir()) \
        == ["samples", "translation_xy", "translation_yx"]
    saved = checkpoint(tmp_path / "run")
    assert {k.split(".")[0] for k in saved["state_dict"]} == {
        "generator_xy", "generator_yx", "discriminator_y", "discriminator_x"}
    pools = saved["ganlab"]["family"]
    assert pools["pool_y"]["images"].shape == (20, 1, 28, 28)


def test_resume_is_bit_exact_and_a_perturbed_checkpoint_is_not(make_cfg, classifiers,
                                                               tmp_path: Path) -> None:
    keep = ["callbacks.checkpoint.every_n_iterations=3",
            "callbacks.checkpoint.keep_every_n_iterations=3"]
    full, resumed, perturbed = tmp_path / "full", tmp_path / "resumed", tmp_path / "perturbed"
    train(make_cfg(*SMALL, *keep, "train.iterations=6", out=full))
    middle = full / "checkpoints" / "iter_3.ckpt"
    # By iteration 3 (24 fakes per pool) the pools of 20 already swap.
    assert checkpoint(full, "iter_3.ckpt")["ganlab"]["family"]["pool_x"]["images"].shape[0] == 20
    train(make_cfg(*SMALL, "train.iterations=6", f"ckpt_path={middle}", out=resumed))
    a, b = checkpoint(full)["state_dict"], checkpoint(resumed)["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Control: one weight of the checkpoint changed, so a resume that ignored it would match.
    ckpt = torch.load(middle, weights_only=False)
    key = next(k for k in ckpt["state_dict"]
               if k.startswith("generator_xy.") and k.endswith("weight"))
    ckpt["state_dict"][key].view(-1)[0] += 0.5
    torch.save(ckpt, tmp_path / "changed.ckpt")
    train(make_cfg(*SMALL, "train.iterations=6", f"ckpt_path={tmp_path / 'changed.ckpt'}",
                   out=perturbed))
    c = checkpoint(perturbed)["state_dict"]
    assert not torch.equal(a[key], c[key])
    # Control: the pools are part of the state (changed pools, another run).
    ckpt = torch.load(middle, weights_only=False)
    ckpt["ganlab"]["family"]["pool_y"]["images"].neg_()
    torch.save(ckpt, tmp_path / "pool.ckpt")
    train(make_cfg(*SMALL, "train.iterations=6", f"ckpt_path={tmp_path / 'pool.ckpt'}",
                   out=tmp_path / "pool"))
    d = checkpoint(tmp_path / "pool")["state_dict"]
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
    assert sorted(p.name.rsplit("_", 1)[0] for p in (tmp_path / "run" / "samples").iterdir()) \
        == ["samples", "translation_xy", "translation_yx"]
