"""A small CNN trained on a dataset's labels, and the feature extractor built from it.

With it, FID becomes "classifier FID" (Fréchet distance of its penultimate activations) and
the Inception Score becomes the "classifier score" (IS with its class posteriors): the
standard metrics for digit data (TF-GAN's ``mnist_frechet_distance`` and ``mnist_score``),
computable with no network. ``ganlab-train-classifier data=<name>`` trains one and saves it to
:func:`classifier_path`; :func:`load_classifier_extractor` reads it back.

For Stacked MNIST (three digits as the RGB channels) the classifier is a 1-channel digit
classifier applied to each channel (``per_channel``): the extractor's features are the three
channels' features side by side and its logits are the 1000 log-probabilities
``log p(d0) + log p(d1) + log p(d2)`` of the triples, indexed ``100*d0 + 10*d1 + d2``.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.data.split import stratified_split as split_by_class
from ganlab.metrics.extractor import FeatureExtractor

#: Keys of the file written by :func:`train_classifier`.
SAVED_KEYS = ("state_dict", "config", "test_accuracy", "num_classes", "data", "image_shape")


class DigitClassifier(nn.Module):
    """Two 3x3 convolutions (ReLU, 2x2 max-pool each), a hidden fully connected layer with
    dropout, and a linear layer to the class logits.

    Args:
        in_channels: C of the input images ``(N, C, H, W)`` in [-1, 1].
        num_classes: K, the number of logits.
        image_size: H = W of the input (at least 4).
        width: channels of the first convolution (the second has twice as many).
        hidden: size D of the penultimate layer (the features).
        dropout: dropout probability before the last layer (training only).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int = 28,
        width: int = 16,
        hidden: int = 128,
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if image_size < 4:
            raise GanlabError(f"the classifier needs images of side ≥ 4, got {image_size}")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        self.image_size = int(image_size)
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        side = image_size // 4
        self.fc = nn.Linear(2 * width * side * side, hidden)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, num_classes)
        self.num_features = int(hidden)

    def features(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, D)``: the penultimate activations (after ReLU)."""
        return F.relu(self.fc(self.conv(x).flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, K)`` class logits."""
        return self.out(self.dropout(self.features(x)))


def state_dict_hash(state_dict: dict[str, Tensor]) -> str:
    """sha256 of the tensors' bytes in key order, first 16 hex characters."""
    h = hashlib.sha256()
    for key in state_dict:
        h.update(key.encode())
        t = state_dict[key].detach().to("cpu").contiguous()
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def triple_log_probs(logits: Tensor) -> Tensor:
    """Per-channel digit logits ``(N, 3, 10)`` -> ``(N, 1000)`` log-probabilities of the
    triples, column ``100*d0 + 10*d1 + d2`` = ``log p(d0) + log p(d1) + log p(d2)``."""
    lp = torch.log_softmax(logits, dim=-1)
    k = lp.shape[-1]
    joint = lp[:, 0, :, None, None] + lp[:, 1, None, :, None] + lp[:, 2, None, None, :]
    return joint.reshape(lp.shape[0], k**3)


class ClassifierExtractor(FeatureExtractor):
    """A trained :class:`DigitClassifier` as a feature extractor: features are its
    penultimate activations, logits its class logits.

    Images come in at the dataset's resolution ``image_shape``; images of another size are
    resized bilinearly to it (and ``resize`` says so). With ``per_channel``, a 1-channel
    classifier reads each of the 3 channels separately (Stacked MNIST): features ``(N, 3*D)``
    and logits over the ``K**3`` triples (see :func:`triple_log_probs`).

    Args:
        classifier: the network (put in eval mode).
        image_shape: ``(C, H, W)`` of the dataset.
        per_channel: classify each channel with a 1-channel classifier.
        test_accuracy: the held-out accuracy stored with the weights (for the protocol).
        data: the dataset name the classifier was trained for.
    """

    name = "classifier"

    def __init__(
        self,
        classifier: DigitClassifier,
        image_shape: tuple[int, int, int],
        per_channel: bool = False,
        test_accuracy: float | None = None,
        data: str | None = None,
    ) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.image_shape = tuple(int(v) for v in image_shape)
        self.per_channel = bool(per_channel)
        self.test_accuracy = test_accuracy
        self.data = data
        channels = self.image_shape[0]
        if self.per_channel:
            if classifier.in_channels != 1:
                raise GanlabError("a per-channel classifier must take 1-channel images")
            if channels != 3:
                raise GanlabError(f"per-channel classification needs 3 channels, got {channels}")
            self.num_features = channels * classifier.num_features
            self.num_classes = classifier.num_classes**channels
        else:
            if classifier.in_channels != channels:
                raise GanlabError(
                    f"the classifier takes {classifier.in_channels}-channel images but the "
                    f"data has {channels}"
                )
            self.num_features = classifier.num_features
            self.num_classes = classifier.num_classes
        self.resize = "none"

    def _prepare(self, images: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != self.image_shape[0]:
            raise GanlabError(
                f"the classifier expects images of shape (N, {self.image_shape[0]}, H, W), "
                f"got {tuple(images.shape)}"
            )
        size = self.image_shape[1:]
        if tuple(images.shape[-2:]) != size:
            self.resize = f"bilinear from {images.shape[-2]}x{images.shape[-1]} to " \
                          f"{size[0]}x{size[1]}"
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False,
                                   antialias=images.shape[-1] > size[1])
        return images.float()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(N, C, H, W)`` in [-1, 1] -> features ``(N, D)`` and logits ``(N, K)``."""
        x = self._prepare(images)
        n, c = x.shape[:2]
        if self.per_channel:
            x = x.reshape(n * c, 1, *x.shape[-2:])
        feats = self.classifier.features(x)
        logits = self.classifier.out(feats)
        if self.per_channel:
            feats = feats.reshape(n, -1)
            logits = triple_log_probs(logits.reshape(n, c, -1))
        return feats, logits

    def digits(self, images: Tensor) -> Tensor:
        """The predicted class: of each channel, ``(N, 3)``, per-channel; else ``(N, 1)``."""
        x = self._prepare(images)
        n, c = x.shape[:2]
        if self.per_channel:
            x = x.reshape(n * c, 1, *x.shape[-2:])
        return self.classifier(x).argmax(dim=1).reshape(n, -1)

    def weights_hash(self) -> str:
        """sha256 (first 16 hex characters) of the classifier's weights."""
        return state_dict_hash(self.classifier.state_dict())


def classifier_path(data_dir: str, data_name: str) -> Path:
    """The default file of the classifier of data ``data_name``:
    ``<data_dir>/classifiers/<data_name>.pt``."""
    return Path(data_dir) / "classifiers" / f"{data_name}.pt"


def _resolve(path: str | os.PathLike[str]) -> Path:
    from ganlab.data.images import resolve_path

    return resolve_path(path)


def load_classifier_extractor(path: str | os.PathLike[str]) -> ClassifierExtractor:
    """The extractor of the classifier file written by ``ganlab-train-classifier``.

    The file is read with ``torch.load(weights_only=True)`` (no code from it is run).
    """
    file = _resolve(path)
    if not file.is_file():
        raise GanlabError(
            f"no classifier at {file}; train one with: ganlab-train-classifier data={file.stem}"
        )
    try:
        saved = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on a damaged or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanlabError(f"cannot read classifier {file}: {first[:200]}") from None
    missing = [k for k in SAVED_KEYS if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise GanlabError(
            f"{file} is not a classifier written by ganlab-train-classifier "
            f"(missing {', '.join(missing)}); train one with: "
            f"ganlab-train-classifier data={file.stem}"
        )
    net = dict(saved["config"].get("net", {}))
    try:
        model = DigitClassifier(**net)
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise GanlabError(f"classifier {file} does not match its own config: {first}") from None
    return ClassifierExtractor(
        model,
        tuple(saved["image_shape"]),
        per_channel=bool(saved["config"].get("per_channel", False)),
        test_accuracy=float(saved["test_accuracy"]),
        data=str(saved["data"]),
    )


# -- training ------------------------------------------------------------------------------


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Each image translated by an integer offset drawn uniformly in ``[-s, s]²``; the pixels
    shifted in are background (-1)."""
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s), value=-1.0)
    dy = torch.randint(0, 2 * s + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * s + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    return padded[torch.arange(n)[:, None, None, None], torch.arange(c)[None, :, None, None],
                  rows, cols]


def stratified_split(
    labels: Tensor, test_fraction: float, seed: int
) -> tuple[Tensor, Tensor]:
    """Indices ``(train, test)``: ``round(test_fraction * n_k)`` of each class ``k`` held out,
    chosen by ``seed`` (:func:`ganlab.data.split.stratified_split`)."""
    if not 0 < test_fraction < 1:
        raise GanlabError(f"classifier.test_fraction must be in (0, 1), got {test_fraction}")
    return split_by_class(labels, test_fraction, seed)


def labelled_splits(cfg: DictConfig) -> dict[str, Any]:
    """The classifier's training and test images (uint8) and labels for ``cfg.data``.

    torchvision datasets use their own test split; others hold out a stratified
    ``classifier.test_fraction`` of the training split (fixed by ``seed``). For Stacked
    MNIST the digits themselves are used (the classifier reads each channel).
    """
    from ganlab.core.config import build, choice
    from ganlab.data.images import ImageDataModule

    # The data's config name: the run's choice, or the one a caller trains for (first use).
    name = cfg.classifier.get("data_name") or choice("data")
    dm = build(cfg.data, "data")
    dm.setup("fit")
    per_channel = bool(getattr(dm, "per_channel_digits", False))
    image_shape = tuple(dm.data_shape)
    if per_channel:
        dm = dm.digits
    if not isinstance(dm, ImageDataModule):
        raise GanlabError(f"ganlab-train-classifier needs labelled images; data={name} has none")
    if dm.num_classes is None:
        raise GanlabError(f"ganlab-train-classifier needs labels; data={name} is unlabelled")
    from ganlab.data.images import official_test_split

    official = official_test_split(dm)
    if official is not None:
        x_train, y_train = dm.images, dm.labels
        x_test, y_test = official
        source = "the official test split"
    else:
        train_idx, test_idx = stratified_split(dm.labels, float(cfg.classifier.test_fraction),
                                               int(cfg.seed))
        x_train, y_train = dm.images[train_idx], dm.labels[train_idx]
        x_test, y_test = dm.images[test_idx], dm.labels[test_idx]
        source = f"a stratified {cfg.classifier.test_fraction:g} of the training split"
    return {
        "name": name,
        "train": (x_train, y_train),
        "test": (x_test, y_test),
        "num_classes": int(dm.num_classes),
        "image_shape": image_shape,
        "per_channel": per_channel,
        "test_source": source,
    }


@torch.no_grad()
def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Share of ``images`` (uint8) whose argmax logit is their label (model in eval mode)."""
    from ganlab.data.images import to_unit_range

    was_training = model.training
    model.eval()
    correct = 0
    for lo in range(0, len(images), batch_size):
        pred = model(to_unit_range(images[lo : lo + batch_size])).argmax(dim=1)
        correct += int((pred == labels[lo : lo + batch_size]).sum())
    model.train(was_training)
    return correct / max(len(images), 1)


def fit(
    model: DigitClassifier,
    images: Tensor,
    labels: Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    max_shift: int,
    seed: int,
    max_steps: int | None = None,
    log: Any = None,
) -> int:
    """Adam on the cross-entropy, minibatches of a fresh permutation every epoch, images
    randomly shifted by up to ``max_shift`` pixels; the learning rate follows a cosine from
    ``lr`` to 0 over the run. Returns the number of steps taken."""
    from ganlab.data.images import to_unit_range

    g = torch.Generator().manual_seed(seed)
    n = len(images)
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch if max_steps is None else min(max_steps,
                                                                     epochs * steps_per_epoch)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / max(total, 1)))
    )
    model.train()
    step = 0
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=g)
        running, seen = 0.0, 0
        for lo in range(0, n, batch_size):
            if step >= total:
                break
            idx = perm[lo : lo + batch_size]
            x = random_shift(to_unit_range(images[idx]), max_shift, g)
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            running += loss.item() * len(idx)
            seen += len(idx)
        if log is not None and seen:
            log(f"ganlab: classifier epoch {epoch + 1}/{epochs}: loss {running / seen:.4f}")
        if step >= total:
            break
    model.eval()
    return step


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def train_classifier(cfg: DictConfig) -> dict[str, Any]:
    """Train the classifier of ``cfg.data`` (``ganlab-train-classifier``), save it and return
    ``{"test_accuracy", "path", "num_test", "num_train", "steps", "seconds", "model"}``."""
    c = cfg.classifier
    for key in ("epochs", "batch_size"):
        value = c.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise GanlabError(f"classifier.{key} must be a positive integer, got {value!r}")
    start = time.perf_counter()
    seed = int(cfg.seed)
    splits = labelled_splits(cfg)
    x_train, y_train = splits["train"]
    x_test, y_test = splits["test"]
    channels = 1 if splits["per_channel"] else x_train.shape[1]
    net = {
        "in_channels": int(channels),
        "num_classes": splits["num_classes"],
        "image_size": int(x_train.shape[-1]),
        **OmegaConf.to_container(c.net, resolve=True),  # type: ignore[dict-item]
    }
    torch.manual_seed(seed)
    model = DigitClassifier(**net)
    steps = fit(model, x_train, y_train, epochs=int(c.epochs), batch_size=int(c.batch_size),
                lr=float(c.lr), max_shift=int(c.max_shift), seed=seed,
                max_steps=c.get("max_steps"), log=print)
    test_accuracy = accuracy(model, x_test, y_test)
    out = c.get("out")
    path = _resolve(out if out else classifier_path(cfg.paths.data_dir, splits["name"]))
    config = {
        "classifier": OmegaConf.to_container(c, resolve=True),
        "net": net,
        "seed": seed,
        "per_channel": splits["per_channel"],
        "test_source": splits["test_source"],
        "num_train": len(x_train),
        "num_test": len(x_test),
    }
    save_atomic(
        {
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "config": config,
            "test_accuracy": test_accuracy,
            "num_classes": splits["num_classes"],
            "data": splits["name"],
            "image_shape": list(splits["image_shape"]),
        },
        path,
    )
    seconds = time.perf_counter() - start
    print(f"ganlab: classifier test accuracy = {test_accuracy:.4f} ({len(x_test)} test images) "
          f"saved to {path}")
    return {
        "test_accuracy": test_accuracy,
        "path": str(path),
        "num_test": len(x_test),
        "num_train": len(x_train),
        "steps": steps,
        "seconds": seconds,
        "model": model,
    }
