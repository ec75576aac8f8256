"""The feature extractor interface shared by every image metric.

An extractor maps images in [-1, 1] at the dataset's resolution to ``(features, logits)``:
features (N, D) feed FID, KID and precision/recall; logits (N, K) feed the Inception Score.
It does its own resizing and channel handling, so metrics never see pixels.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import Tensor, nn


class FeatureExtractor(nn.Module):
    """Maps images to (features, logits) for FID/KID/PR (features) and IS (logits).

    Subclasses set ``name``, ``num_features`` (D), ``num_classes`` (K, or ``None`` without a
    class head) and ``resize`` (protocol text, e.g. ``"none"``), and implement :meth:`forward`.
    """

    name: str = "extractor"
    num_features: int
    num_classes: int | None = None
    resize: str = "none"

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """``images``: float (N, C, H, W) in [-1, 1]. Returns features (N, D) and logits (N, K)
        or ``None``. The caller runs it in eval mode under ``torch.no_grad``."""
        raise NotImplementedError

    def protocol_fields(self) -> dict[str, Any]:
        """Extractor-specific entries of the protocol (e.g. where the weights came from)."""
        return {}

    def weights_hash(self) -> str:
        """sha256 (hex, first 16 characters) of the weights' bytes, in sorted key order: part
        of the real-statistics cache key and of the protocol."""
        cached = getattr(self, "_weights_hash", None)
        if cached is None:
            digest = hashlib.sha256()
            for key, tensor in sorted(self.state_dict().items()):
                digest.update(key.encode())
                flat = tensor.detach().cpu().contiguous().reshape(-1)
                digest.update(flat.view(torch.uint8).numpy())
            cached = digest.hexdigest()[:16]
            self._weights_hash = cached
        return cached


@torch.no_grad()
def extract(
    extractor: FeatureExtractor, images: Tensor, batch_size: int = 500
) -> tuple[Tensor, Tensor | None]:
    """Features (float32, CPU) and logits (or ``None``) of ``images``, in batches, eval mode."""
    mode = extractor.training
    extractor.eval()
    device = next(iter(extractor.parameters()), torch.empty(0)).device
    features, logits = [], []
    try:
        for part in images.split(batch_size):
            f, lg = extractor(part.to(device))
            features.append(f.float().cpu())
            if lg is not None:
                logits.append(lg.float().cpu())
    finally:
        extractor.train(mode)
    feats = torch.cat(features) if features else torch.empty(0, extractor.num_features)
    return feats, (torch.cat(logits) if logits else None)


class PrecomputedFeatures(nn.Module):
    """The identity, standing in for torchmetrics' ``feature=`` network: ganlab extracts
    features once per image and feeds them to every metric."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, features: Tensor) -> Tensor:
        return features
