"""Small stand-ins for the image-metric tests: an extractor that counts its images, and an
in-memory image datamodule."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.data.images import ImageDataModule
from ganlab.metrics.extractor import FeatureExtractor


class CountingExtractor(FeatureExtractor):
    """Features: a fixed random projection of the pixels (D = 8); logits: 4 classes."""

    name = "counting"
    num_features = 8
    num_classes = 4

    def __init__(self, pixels: int, seed: int = 0) -> None:
        super().__init__()
        self.proj = nn.Linear(pixels, 8)
        self.head = nn.Linear(8, 4)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        self.images_seen = 0

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        self.images_seen += images.shape[0]
        features = torch.tanh(self.proj(images.flatten(1)))
        return features, self.head(features)


class TinyImages(ImageDataModule):
    """``count`` random uint8 images of shape ``shape`` (a function of ``content_seed``)."""

    def __init__(self, count: int = 64, shape: tuple[int, int, int] = (1, 8, 8),
                 content_seed: int = 0) -> None:
        super().__init__(batch_size=8, d_steps=1, iterations=1, seed=0)
        self.count, self.shape, self.content_seed = count, shape, content_seed

    def load(self) -> tuple[Tensor, Tensor]:
        g = torch.Generator().manual_seed(self.content_seed)
        images = torch.randint(0, 256, (self.count, *self.shape), generator=g, dtype=torch.uint8)
        return images, torch.zeros(self.count, dtype=torch.int64)
