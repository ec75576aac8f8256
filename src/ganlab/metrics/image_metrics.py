"""FID, KID, Inception Score and precision/recall of generated images, with their protocol.

Features of the generated images are extracted once and fed to every metric; the real
features come from the statistics cache (:mod:`ganlab.metrics.stats_cache`).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

from torch import Tensor

from ganlab.metrics.extractor import FeatureExtractor, extract
from ganlab.metrics.fid_infinity import fid_infinity, fid_infinity_protocol, sample_sizes
from ganlab.metrics.frechet import FrechetDistance
from ganlab.metrics.inception_score import InceptionScore
from ganlab.metrics.kid import KernelDistance
from ganlab.metrics.precision_recall import precision_recall
from ganlab.metrics.protocol import protocol
from ganlab.metrics.stacked_modes import stacked_modes_from_logits
from ganlab.metrics.stats_cache import (
    RealStatistics,
    StatisticsCache,
    data_identity,
    images_digest,
)

#: Seed that picks the real images (the same for every run and every evaluation).
REAL_SEED = 54321
#: Every ganlab datamodule serves its training split.
REAL_SPLIT = "train"


class ImageMetrics:
    """Measures generated images against ``num_real`` real images of ``datamodule``.

    Args:
        extractor: the :class:`FeatureExtractor` (``inception`` or ``classifier``).
        datamodule: an image datamodule (``sample_n``, ``num_samples``, ``data_shape``).
        data_cfg: the dataset's config (its content-deciding part enters the cache key).
        num_real: real samples (capped at the dataset's size; ``None``: as many as generated).
        cache_dir: folder of the real-statistics cache.
        kid_subsets, kid_subset_size: KID's subsets (Bińkowski et al.: 100 of 1,000).
        is_splits: Inception Score splits (Salimans et al.: 10).
        pr_k: neighbours of precision/recall (Kynkäänniemi et al.: 3).
    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        datamodule: Any,
        data_cfg: dict[str, Any],
        num_real: int | None,
        cache_dir: str | os.PathLike[str],
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        pr_k: int = 3,
        batch_size: int = 500,
    ) -> None:
        self.extractor = extractor
        self.datamodule = datamodule
        self.data = data_identity(dict(data_cfg))
        self.requested_real = num_real
        self.cache = StatisticsCache(cache_dir)
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.is_splits = is_splits
        self.pr_k = pr_k
        self.batch_size = batch_size
        # FID at several N and FID_inf (ganlab.metrics.fid_infinity): off with 0 points.
        self.fid_infinity_points, self.fid_infinity_min = 0, 0.1
        self.fid_fit: dict[str, Any] | None = None
        self._real: RealStatistics | None = None
        self._real_n: int | None = None
        self.key: dict[str, Any] = {}

    def num_real(self, num_generated: int) -> int:
        wanted = self.requested_real if self.requested_real is not None else num_generated
        return min(int(wanted), int(getattr(self.datamodule, "num_samples", wanted)))

    def real_statistics(self, num_real: int) -> RealStatistics:
        """The real statistics (from memory, the disk cache, or computed once and cached)."""
        if self._real is not None and self._real_n == num_real:
            return self._real
        images = self.datamodule.sample_n(num_real, seed=REAL_SEED)
        self.key = {
            "data": self.data,
            "split": REAL_SPLIT,
            "extractor": self.extractor.name,
            "weights_hash": self.extractor.weights_hash(),
            "resolution": list(self.datamodule.data_shape),
            "num_real": num_real,
            "real_seed": REAL_SEED,
            "images_sha256": images_digest(images),
        }
        self._real = self.cache.get(
            self.key, lambda: extract(self.extractor, images, self.batch_size)[0]
        )
        self._real_n = num_real
        return self._real

    def __call__(self, fake: Tensor) -> dict[str, float]:
        """fid, kid, kid_std, is, is_std (when the extractor has logits), precision, recall."""
        real = self.real_statistics(self.num_real(fake.shape[0]))
        features, logits = extract(self.extractor, fake.float(), self.batch_size)
        dim = features.shape[1]
        fid = FrechetDistance(dim, sync_on_compute=False)
        fid.set_real_statistics(real.mu, real.sigma, real.features.shape[0], real.sqrt_sigma)
        fid.update(features.double(), real=False)
        with warnings.catch_warnings():  # "will save all extracted features in buffer"
            warnings.simplefilter("ignore", UserWarning)
            kid = KernelDistance(dim, subsets=self.kid_subsets,
                                 subset_size=self.kid_subset_size, sync_on_compute=False)
            score = (InceptionScore(logits.shape[1], splits=self.is_splits,
                                    sync_on_compute=False) if logits is not None else None)
        kid.set_real_features(real.features)
        kid.update(features, real=False)
        kid_mean, kid_std = kid.compute()
        precision, recall = precision_recall(real.features, features, self.pr_k)
        extra = self._fid_infinity(real, features)
        out = {"fid": float(fid.compute()), "kid": float(kid_mean), "kid_std": float(kid_std),
               "precision": precision, "recall": recall, **extra}
        if score is not None and logits is not None:
            score.update(logits)
            is_mean, is_std = score.compute()
            out["is"], out["is_std"] = float(is_mean), float(is_std)
        if getattr(self.extractor, "per_channel", False) and logits is not None:
            # Stacked MNIST: the argmax over the 1000 triple log-probabilities is the mode.
            modes = stacked_modes_from_logits(logits)
            out["modes_covered"] = modes["modes_covered"]
            out["reverse_kl"] = modes["reverse_kl"]
        return out

    def _fid_infinity(self, real: RealStatistics, features: Tensor) -> dict[str, float]:
        if not self.fid_infinity_points:
            return {}
        sizes = sample_sizes(features.shape[0], self.fid_infinity_points, self.fid_infinity_min)
        self.fid_fit = fid_infinity(real.mu, real.sigma, features, sizes, REAL_SEED,
                                    real.sqrt_sigma)
        return {"fid_infinity": self.fid_fit["fid_infinity"], "fid_infinity_k": self.fid_fit["k"]}

    def protocol(self, num_generated: int, **extra: Any) -> dict[str, Any]:
        """The protocol of a measurement on ``num_generated`` samples."""
        num_real = self.num_real(num_generated)
        return protocol(
            num_generated=num_generated,
            num_real=num_real,
            real_split=REAL_SPLIT,
            extractor=self.extractor.name,
            weights_hash=self.extractor.weights_hash(),
            resize=self.extractor.resize,
            data=self.data,
            resolution=list(self.datamodule.data_shape),
            kid={"subsets": self.kid_subsets,
                 "subset_size": min(self.kid_subset_size, num_real, num_generated),
                 "kernel": "(x.y/D + 1)^3"},
            is_splits=self.is_splits,
            pr_k=self.pr_k,
            real_seed=REAL_SEED,
            stats_key=self.cache.path(self.key).stem if self.key else None,
            **self.extractor.protocol_fields(),
            **fid_infinity_protocol(num_generated, self.fid_infinity_points,
                                    self.fid_infinity_min, REAL_SEED, self.fid_fit),
            **extra,
        )
