"""Reading ganlab checkpoints safely: ``torch.load(weights_only=True)`` runs no code from the
file, and a damaged, foreign or unsafe file is reported in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ganlab.core.errors import GanlabError


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a ganlab checkpoint with ``weights_only=True`` (no code from the file is run)."""
    path = Path(path)
    if not path.is_file():
        raise GanlabError(f"checkpoint not found: {path.resolve()}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on a damaged or foreign file
        raise GanlabError(f"cannot read checkpoint {path.resolve()}: {_why(exc)}") from None
    if not isinstance(checkpoint, dict) or "ganlab" not in checkpoint:
        raise GanlabError(f"{path.resolve()} is not a ganlab checkpoint")
    return checkpoint


def _why(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "Weights only load failed" in text or "weights_only" in text:
        return ("it holds pickled Python objects, not only tensors and plain data; refused, "
                "since loading it would run code from the file")
    return f"truncated or not a PyTorch checkpoint ({text[:120] or type(exc).__name__})"


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with resuming (``trainer.fit(ckpt_path=...)``) through
    :func:`load_checkpoint`: ``weights_only=True``, one-line errors."""

    def load_checkpoint(self, path: Any, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path)
