"""Reading ganlab checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganlab.errors import GanlabError


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a ganlab checkpoint with ``weights_only=True`` (no code from the file is run)."""
    path = Path(path)
    if not path.is_file():
        raise GanlabError(f"checkpoint not found: {path.resolve()}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types on a damaged or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GanlabError(f"cannot read checkpoint {path.resolve()}: {first[:200]}") from None
    if not isinstance(checkpoint, dict) or "ganlab" not in checkpoint:
        raise GanlabError(f"{path.resolve()} is not a ganlab checkpoint")
    return checkpoint
