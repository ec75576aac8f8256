"""The same runs on one CUDA GPU (skipped on a machine without one): exact resume, image
metrics and mixed precision."""

from __future__ import annotations

import pytest
import torch

from ganlab.app.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

GPU = ["trainer.accelerator=gpu", "trainer.devices=1", "trainer.deterministic=true"]


def weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True, map_location="cpu")["state_dict"]


def test_resume_on_the_gpu_is_bit_identical(make_cfg, tmp_path) -> None:
    common = [*GPU, "metrics.every_n_iterations=0"]
    full, half, rest = tmp_path / "full", tmp_path / "half", tmp_path / "rest"
    train(make_cfg("train.iterations=10", *common, out=full))
    train(make_cfg("train.iterations=5", *common, out=half))
    train(make_cfg("train.iterations=10", *common,
                   f"ckpt_path={half / 'checkpoints' / 'last.ckpt'}", out=rest))
    a = weights(full / "checkpoints" / "last.ckpt")
    b = weights(rest / "checkpoints" / "last.ckpt")
    c = weights(half / "checkpoints" / "last.ckpt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not all(torch.equal(a[key], c[key]) for key in a)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed", "16-mixed"])
def test_dcgan_with_image_metrics_on_the_gpu(make_cfg, tmp_path, precision: str) -> None:
    metrics = train(make_cfg(
        "experiment=dcgan_mnist_offline", *GPU[:2], f"trainer.precision={precision}",
        "train.iterations=20", "metrics.num_samples=500", "metrics.every_n_iterations=10",
        "metrics.kid_subsets=10", "metrics.kid_subset_size=100",
        out=tmp_path / "run",
    ))
    assert metrics["iterations"] == 20
    for name in ("fid", "kid", "is", "precision", "recall"):
        assert torch.isfinite(torch.tensor(float(metrics[name]))), name
    assert 1.0 <= metrics["is"] <= 10.0
    assert 0.0 <= metrics["precision"] <= 1.0
