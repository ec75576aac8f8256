"""Reading ganlab checkpoints safely: ``torch.load(weights_only=True)`` runs no code from the
file, and a damaged, foreign or unsafe file is reported in one line. Writing them atomically:
a failed write keeps the previous file and names the one that could not be written."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from ganlab.core.atomic import write_bytes
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


def checkpoint_iteration(path: str | Path) -> int | None:
    """The iteration a ganlab checkpoint holds, or None when it cannot be read."""
    try:
        return int(load_checkpoint(path)["ganlab"]["iteration"])
    except (GanlabError, KeyError, TypeError, ValueError):
        return None


def _why(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if "Weights only load failed" in text or "weights_only" in text:
        return ("it holds pickled Python objects, not only tensors and plain data; refused, "
                "since loading it would run code from the file")
    return f"truncated or not a PyTorch checkpoint ({text[:120] or type(exc).__name__})"


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with resuming (``trainer.fit(ckpt_path=...)``) through
    :func:`load_checkpoint` (``weights_only=True``, one-line errors) and saving through
    :func:`ganlab.core.atomic.write_bytes` (a temporary file beside the target, then a rename:
    never a half-written checkpoint, and a full disk names the checkpoint)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes(path, buffer.getvalue())

    def load_checkpoint(self, path: Any, map_location: Any = None,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return load_checkpoint(path)
