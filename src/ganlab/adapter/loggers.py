"""Experiment loggers. W&B runs offline unless credentials exist, so nothing needs the network."""

from __future__ import annotations

import csv
import netrc
import os
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only


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


class FallbackWandbLogger(WandbLogger):
    """A :class:`WandbLogger` that continues offline, with a one-line warning, when the online
    run cannot start (no network, a wrong key, a server that does not answer in time): a run is
    never lost to W&B. The offline run is uploaded later with ``wandb sync``.

    Lightning passes ``anonymous=None`` to ``wandb.init``, which wandb ≥ 0.19 answers with
    "The anonymous setting has no effect" at every start: the key is not passed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        if self._experiment is None and not self._offline:
            try:
                return super().experiment
            except Exception as exc:  # wandb raises CommError, UsageError, timeouts...
                import wandb

                if wandb.run is not None:
                    wandb.finish(exit_code=1, quiet=True)
                text = " ".join(str(exc).split()) or type(exc).__name__
                print(f"ganlab: warning: W&B could not start online ({text[:160]}); "
                      "logging offline instead (upload later with `wandb sync`)",
                      file=sys.stderr, flush=True)
                self._offline = True
                self._wandb_init["mode"] = "offline"
        return super().experiment


def wandb_logger(
    project: str,
    save_dir: str,
    name: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    mode: str = "auto",
    config: dict[str, Any] | None = None,
    init_timeout: float | None = None,
    **kwargs: Any,
) -> WandbLogger:
    """A W&B logger in the resolved mode (see :func:`resolve_wandb_mode`) that falls back to
    offline when online fails (:class:`FallbackWandbLogger`); ``init_timeout`` (seconds) bounds
    how long the online start may take."""
    resolved = resolve_wandb_mode(mode)
    if getattr(rank_zero_only, "rank", 0) == 0:  # other data-parallel ranks write nothing
        os.makedirs(save_dir, exist_ok=True)
    if init_timeout is not None and "settings" not in kwargs:
        import wandb

        kwargs["settings"] = wandb.Settings(init_timeout=float(init_timeout))
    return FallbackWandbLogger(
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


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is continued (its
    columns taken over) instead of deleted."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as handle:
                self.metrics_keys = list(next(csv.reader(handle), []))


class ContinuingCSVLogger(CSVLogger):
    """:class:`CSVLogger` whose ``metrics.csv`` a resumed run appends to (Lightning's deletes
    the file of a run resumed in place, and its curves before the resume with it)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return self._experiment
