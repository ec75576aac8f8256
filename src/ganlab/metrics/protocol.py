"""The protocol of a measurement: everything needed to compare two numbers fairly."""

from __future__ import annotations

from importlib import metadata
from typing import Any

#: Numerical precision of the image metrics.
PRECISION = "float64 statistics, float32 features"


def library_versions() -> dict[str, str]:
    """Versions of the libraries that the numbers depend on ("absent" when not installed)."""
    out = {}
    for name in ("torch", "torchmetrics", "torch-fidelity", "ganlab"):
        try:
            out[name.replace("-", "_")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name.replace("-", "_")] = "absent"
    return out


def protocol(
    *,
    num_generated: int,
    num_real: int,
    real_split: str,
    extractor: str,
    weights_hash: str,
    resize: str,
    **extra: Any,
) -> dict[str, Any]:
    """The protocol dict stored beside the values (metrics.json) and logged to W&B."""
    return {
        "num_generated": num_generated,
        "num_real": num_real,
        "real_split": real_split,
        "extractor": extractor,
        "weights_hash": weights_hash,
        "resize": resize,
        "precision": PRECISION,
        "versions": library_versions(),
        **extra,
    }
