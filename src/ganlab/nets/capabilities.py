"""What a network offers to the plugins of a run (:mod:`ganlab.core.capabilities`)."""

from __future__ import annotations

from torch import nn

#: The methods and attribute that make a discriminator's features usable (``D(x) ==
#: D.head(D.features(x))``).
FEATURES = ("features", "head", "feature_dim")


def network_capabilities(net: nn.Module) -> frozenset[str]:
    """``features`` when ``net`` has :data:`FEATURES`, ``batch_norm`` when it has a batch-norm
    layer (per-sample gradient penalties need a D without one)."""
    caps = set()
    if all(hasattr(net, a) for a in FEATURES):
        caps.add("features")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()):
        caps.add("batch_norm")
    return frozenset(caps)
