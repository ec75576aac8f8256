"""The standard Inception-v3 features: torch-fidelity's port of the 2015-12-05 TensorFlow
graph that FID, KID and IS were defined with (2048 pool features, 1008 unbiased logits)."""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.metrics.extractor import FeatureExtractor
from ganlab.metrics.inception_network import inception_network
from ganlab.metrics.inception_weights import (
    InceptionWeights,
    from_download,
    from_file,
    resolve_inception_weights,
)
from ganlab.metrics.resize import DESCRIPTIONS, RESIZES, clean_resize

#: Feature layers of the port (pool features of these sizes); FID uses 2048.
DIMS = (64, 192, 768, 2048)


def random_inception_state_dict(seed: int = 0) -> dict[str, Tensor]:
    """Random Inception weights with kaiming-normal convolutions (the default init makes the
    features vanish): for offline tests and timing, never for reported numbers."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = inception_network(None)
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    return net.state_dict()


def load_inception_weights(weights: str | os.PathLike[str] | None) -> dict[str, Tensor]:
    """torch-fidelity's weights from ``weights`` (a file), or downloaded into torch's hub cache
    when ``None``; one line saying how to get them when neither works."""
    found = from_file(weights) if weights is not None else from_download()
    return found.state_dict


#: torch-fidelity's layers after the resize and the normalisation, in order, and the pool
#: features tapped after some of them.
_LAYERS = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "MaxPool_1", "Conv2d_3b_1x1",
           "Conv2d_4a_3x3", "MaxPool_2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a",
           "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c")
_TAPS = {"MaxPool_1": 64, "MaxPool_2": 192, "Mixed_6e": 768, "Mixed_7c": 2048}


def forward_resized(net: nn.Module, x: Tensor, dims: int, logits: bool
                    ) -> tuple[Tensor, Tensor | None]:
    """torch-fidelity's ``FeatureExtractorInceptionV3.forward`` after its resize: ``x`` float
    (N, 3, 299, 299) in [0, 255] (already resized) to the ``dims`` pool features and, with
    ``logits``, the unbiased logits (``features @ fc.weight.T``)."""
    x = (x.float() - 128) / 128
    features = None
    for name in _LAYERS:
        x = getattr(net, name)(x)
        if _TAPS.get(name) == dims:
            features = F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1).float()
            if not logits:
                return features, None
    assert features is not None
    pool = F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1)
    return features, pool.mm(net.fc.weight.T).float()


class InceptionExtractor(FeatureExtractor):
    """Inception-v3 pool features (D = 2048, the standard; 64, 192 or 768 as torchmetrics
    offers) and unbiased logits (K = 1008) when the weights have the logits layer.

    Images in [-1, 1] are quantised to uint8 (as saved images would be), grey images are
    repeated to RGB, and resized to 299x299 as ``resize`` says (:mod:`ganlab.metrics.resize`:
    ``legacy``, TensorFlow 1.x's bilinear as the reference FID code; ``clean``, clean-fid's
    PIL bicubic).

    Args:
        weights: a file of torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``.
        dims: the feature layer (2048: the final pool, as in the FID paper).
        state_dict: weights given directly (tests, benchmarks) instead of ``weights``.
        source: where the weights come from (:mod:`ganlab.metrics.inception_weights`:
            ``auto``, ``file``, ``download``, ``fid_helper``).
        cache_dir: where converted weights are cached (``None``: torch's hub cache).
        resize: ``legacy`` or ``clean``.
    """

    name = "inception"
    num_features = 2048
    num_classes: int | None = 1008

    def __init__(self, weights: str | os.PathLike[str] | None = None, dims: int = 2048,
                 state_dict: dict[str, Any] | None = None, source: str = "auto",
                 cache_dir: str | os.PathLike[str] | None = None,
                 resize: str = "legacy") -> None:
        super().__init__()
        if dims not in DIMS:
            raise GanlabError(f"extractor.dims must be one of {', '.join(map(str, DIMS))}, "
                              f"got {dims}")
        if resize not in RESIZES:
            raise GanlabError(f"extractor.resize must be one of {', '.join(RESIZES)}, "
                              f"got {resize!r}")
        self.num_features = int(dims)
        if dims != 2048:
            self.name = f"inception-{dims}"
        self.resize_mode = resize
        self.resize = DESCRIPTIONS[resize]
        if state_dict is not None:
            found = InceptionWeights(state_dict, "state_dict", "weights given directly")
        else:
            found = resolve_inception_weights(weights, source, cache_dir)
        self.weights_source = found.description
        self.has_logits = found.has_logits
        if not self.has_logits:
            self.num_classes = None
            print(f"ganlab: Inception Score skipped: the Inception weights ({found.description}) "
                  "have no logits layer; FID, KID and precision/recall are computed")
        outputs = [str(dims)] + (["logits_unbiased"] if self.has_logits else [])
        self.net = inception_network(found.state_dict, outputs)
        self.net.requires_grad_(False)
        self.eval()

    def protocol_fields(self) -> dict[str, Any]:
        return {"weights": self.weights_source}

    def train(self, mode: bool = True) -> InceptionExtractor:
        return super().train(False)  # batch norms always use their running statistics

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        pixels = ((images.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
        if pixels.shape[1] == 1:
            pixels = pixels.repeat(1, 3, 1, 1)
        if self.resize_mode == "clean":
            return forward_resized(self.net, clean_resize(pixels), self.num_features,
                                   self.has_logits)
        out = self.net(pixels)
        return out[0], (out[1] if self.has_logits else None)
