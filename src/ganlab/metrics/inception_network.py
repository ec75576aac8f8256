"""torch-fidelity's Inception-v3 port built from a state dict that ganlab has already read
safely (its constructor would download or unpickle weights itself)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import Tensor, nn


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


def inception_network(state_dict: dict[str, Tensor] | None,
                      outputs: list[str] | None = None) -> nn.Module:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` with ``state_dict`` (``None``: the
    constructor's initialisation), giving ``outputs`` (default: the 2048 pool features and the
    unbiased logits)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with _state_dict_for_constructor(state_dict):
        return FeatureExtractorInceptionV3("inception-v3-compat",
                                           outputs or ["2048", "logits_unbiased"])
