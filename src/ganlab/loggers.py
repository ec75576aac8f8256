"""Experiment loggers. W&B runs offline unless credentials exist, so nothing needs the network."""

from __future__ import annotations

import netrc
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger


def wandb_credentials_present() -> bool:
    """True when an API key is in the environment or ``~/.netrc`` has the W&B host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host or "api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_wandb_mode(mode: str = "auto") -> str:
    """``auto`` → ``WANDB_MODE`` if set, else ``online`` with credentials, else ``offline``."""
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE")
    if env:
        return env
    return "online" if wandb_credentials_present() else "offline"


def wandb_logger(
    project: str,
    save_dir: str,
    name: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    mode: str = "auto",
    config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> WandbLogger:
    """A :class:`WandbLogger` in the resolved mode (see :func:`resolve_wandb_mode`)."""
    resolved = resolve_wandb_mode(mode)
    os.makedirs(save_dir, exist_ok=True)
    return WandbLogger(
        project=project,
        save_dir=save_dir,
        name=name,
        group=group,
        tags=[str(t)[:64] for t in tags],
        offline=resolved == "offline",
        mode=resolved if resolved in ("online", "offline", "disabled") else None,
        config=config,
        log_model=False,
        **kwargs,
    )
