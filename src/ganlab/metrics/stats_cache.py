"""Real-data feature statistics, computed once and cached on disk under a content-hash key.

The key is a JSON object (dataset and the parameters that change its content, split,
extractor and the hash of its weights, resolution, number of real samples, the seed that
picks them, and the sha256 of the picked images themselves); the file is
``<cache_dir>/<sha256 of the canonical JSON>.pt``. Any change in any part gives another file,
so stale statistics are never read. A file holds ``mu`` and ``sigma`` (float64, for FID) and
all ``num_real`` real features (float32, for KID and precision/recall), plus its key; a
``.json`` beside it shows the key to people.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganlab.metrics.frechet import mean_and_covariance, sqrt_psd

#: Config keys of a dataset that do not change which images it holds.
NOT_CONTENT = ("batch_size", "d_steps", "iterations", "seed", "download", "root")


@dataclass
class RealStatistics:
    """Features of the real samples: float64 mean and covariance, and the features."""

    mu: Tensor
    sigma: Tensor
    features: Tensor
    _sqrt_sigma: Tensor | None = None

    @property
    def sqrt_sigma(self) -> Tensor:
        """Sigma^{1/2} (float64), computed on first use and kept in memory."""
        if self._sqrt_sigma is None:
            self._sqrt_sigma = sqrt_psd(self.sigma.to(torch.float64))
        return self._sqrt_sigma

    @classmethod
    def of(cls, features: Tensor) -> RealStatistics:
        mu, sigma = mean_and_covariance(features)
        return cls(mu, sigma, features.float())


def data_identity(data_cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a dataset's config that decides its content (its class and parameters)."""
    return {k: v for k, v in sorted(data_cfg.items()) if k not in NOT_CONTENT}


def images_digest(images: Tensor) -> str:
    """sha256 (hex, first 16 characters) of a tensor's bytes."""
    flat = images.detach().cpu().contiguous().reshape(-1)
    return hashlib.sha256(flat.view(torch.uint8).numpy()).hexdigest()[:16]


def cache_key(parts: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``parts`` (sorted keys, no spaces)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class StatisticsCache:
    """Files of real statistics under ``directory``; ``hits`` and ``misses`` count lookups."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        from ganlab.data.images import resolve_path

        self.directory = resolve_path(directory)
        self.hits = 0
        self.misses = 0

    def path(self, parts: dict[str, Any]) -> Path:
        return self.directory / f"{cache_key(parts)}.pt"

    def load(self, parts: dict[str, Any]) -> RealStatistics | None:
        """The statistics stored for ``parts``, or ``None`` (absent, unreadable, other key)."""
        path = self.path(parts)
        if not path.is_file():
            return None
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a damaged file is recomputed and replaced
            return None
        canonical = json.loads(json.dumps(parts, sort_keys=True, default=str))
        if not isinstance(stored, dict) or stored.get("key") != canonical:
            return None
        return RealStatistics(stored["mu"], stored["sigma"], stored["features"])

    def save(self, parts: dict[str, Any], stats: RealStatistics) -> Path:
        """Store ``stats`` under ``parts`` (through a temporary file and a rename)."""
        path = self.path(parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        canonical = json.loads(json.dumps(parts, sort_keys=True, default=str))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save({"key": canonical, "mu": stats.mu, "sigma": stats.sigma,
                    "features": stats.features}, tmp)
        os.replace(tmp, path)
        path.with_suffix(".json").write_text(json.dumps(canonical, indent=2, sort_keys=True))
        return path

    def get(self, parts: dict[str, Any], features: Callable[[], Tensor]) -> RealStatistics:
        """The cached statistics for ``parts``; on a miss, ``features()`` are computed, stored
        and returned."""
        stats = self.load(parts)
        if stats is not None:
            self.hits += 1
            return stats
        self.misses += 1
        stats = RealStatistics.of(features())
        self.save(parts, stats)
        return stats
