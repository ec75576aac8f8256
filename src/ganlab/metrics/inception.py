"""The standard Inception-v3 features: torch-fidelity's port of the 2015-12-05 TensorFlow
graph that FID, KID and IS were defined with (2048 pool features, 1008 unbiased logits)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.metrics.extractor import FeatureExtractor

#: Where torch-fidelity publishes the converted weights (fetched on first use when online).
WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
#: Feature layers of the port (pool features of these sizes); FID uses 2048.
DIMS = (64, 192, 768, 2048)


@contextlib.contextmanager
def _state_dict_for_constructor(state_dict: dict[str, Tensor] | None) -> Iterator[None]:
    """torch-fidelity's constructor downloads or unpickles its weights itself; make it take
    ``state_dict`` (already read safely) instead, or keep its fresh init when ``None``."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    original_load = tf_inception.load_state_dict_from_url
    original_apply = tf_inception.FeatureExtractorInceptionV3.load_state_dict
    tf_inception.load_state_dict_from_url = lambda *args, **kwargs: state_dict
    if state_dict is None:
        tf_inception.FeatureExtractorInceptionV3.load_state_dict = lambda self, sd, **kw: None
    try:
        yield
    finally:
        tf_inception.load_state_dict_from_url = original_load
        tf_inception.FeatureExtractorInceptionV3.load_state_dict = original_apply


def inception_network(state_dict: dict[str, Tensor] | None, dims: int = 2048) -> nn.Module:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` with ``state_dict`` (``None``: the
    constructor's initialisation), giving the ``dims`` pool features and the logits."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with _state_dict_for_constructor(state_dict):
        return FeatureExtractorInceptionV3("inception-v3-compat", [str(dims), "logits_unbiased"])


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
    """The weights from ``weights`` (a file), or fetched from :data:`WEIGHTS_URL` into torch's
    hub cache when ``None``; one line saying how to fix it when neither works."""
    from ganlab.data.images import resolve_path

    how = ("download it on a machine with internet from " + WEIGHTS_URL +
           " and pass metrics.inception_weights=<file>, or use extractor=classifier")
    if weights is not None:
        path = resolve_path(weights)
        if not path.is_file():
            raise GanlabError(f"Inception weights not found at {path}; {how}")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise GanlabError(f"cannot read Inception weights {path}: {first}") from None
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # torch.hub's "Downloading: ..." line
            return torch.hub.load_state_dict_from_url(WEIGHTS_URL, map_location="cpu",
                                                      progress=False, weights_only=True)
    except Exception as exc:  # URLError, HTTPError, timeout, ...
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise GanlabError(f"cannot download the Inception weights ({reason}); {how}") from None


class InceptionExtractor(FeatureExtractor):
    """Inception-v3 pool features (D = 2048, the standard; 64, 192 or 768 as torchmetrics
    offers) and unbiased logits (K = 1008).

    Images in [-1, 1] are quantised to uint8 (as saved images would be), grey images are
    repeated to RGB, and torch-fidelity resizes them to 299x299 with TensorFlow 1.x's bilinear
    interpolation, as the reference FID code does.

    Args:
        weights: file of torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``;
            ``None`` downloads it (once, into torch's hub cache).
        dims: the feature layer (2048: the final pool, as in the FID paper).
        state_dict: weights given directly (tests, benchmarks) instead of ``weights``.
    """

    name = "inception"
    num_features = 2048
    num_classes = 1008
    resize = "uint8, then bilinear to 299x299 (TensorFlow 1.x compatible, torch-fidelity)"

    def __init__(self, weights: str | os.PathLike[str] | None = None, dims: int = 2048,
                 state_dict: dict[str, Any] | None = None) -> None:
        super().__init__()
        if dims not in DIMS:
            raise GanlabError(f"extractor.dims must be one of {', '.join(map(str, DIMS))}, "
                              f"got {dims}")
        self.num_features = int(dims)
        if dims != 2048:
            self.name = f"inception-{dims}"
        self.net = inception_network(
            state_dict if state_dict is not None else load_inception_weights(weights), dims)
        self.net.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> InceptionExtractor:
        return super().train(False)  # batch norms always use their running statistics

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        pixels = ((images.float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
        if pixels.shape[1] == 1:
            pixels = pixels.repeat(1, 3, 1, 1)
        features, logits = self.net(pixels)
        return features, logits
