"""Periodic and final evaluation: ``val/*`` scalars, ``metrics.json``, the best checkpoint.

On image data with an extractor, the image metrics (FID, KID, IS, precision/recall) are
computed by rank 0 from all samples and broadcast to the other processes; their protocol is
logged to W&B (config and table) and stored in metrics.json under ``protocol``; the
checkpoint with the lowest FID is kept as ``best.ckpt``. The callback times itself and says
what share of the run evaluation took.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from ganlab.adapter.callbacks import due
from ganlab.adapter.callbacks.checkpoint import save_atomic
from ganlab.adapter.module import GANModule
from ganlab.core.atomic import append_text, write_text
from ganlab.core.config import build
from ganlab.metrics.evaluate import (
    build_image_metrics,
    default_metrics,
    evaluate,
    image_protocol,
)
from ganlab.metrics.image_metrics import ImageMetrics
from ganlab.metrics.metric import MetricSetup


def write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    """Write ``metrics`` as JSON (atomically)."""
    write_text(path, json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def flatten(tree: dict[str, Any], prefix: str = "") -> list[list[str]]:
    """``[[dotted key, value as text], ...]`` of a nested dict (rows of a W&B table)."""
    rows = []
    for key, value in tree.items():
        if isinstance(value, dict):
            rows += flatten(value, f"{prefix}{key}.")
        else:
            rows.append([f"{prefix}{key}", json.dumps(value) if not isinstance(value, str)
                         else value])
    return rows


class EvaluationCallback(L.Callback):
    """Evaluates G every ``every_n_iterations`` (logs ``val/<metric>``, appends a line to
    ``<output_dir>/metrics_history.jsonl``) and at the end of training, where it writes
    ``<output_dir>/metrics.json``.

    Args:
        output_dir: the run's folder.
        every_n_iterations: evaluation period (0: only at the end).
        num_samples: generated samples per evaluation.
        extractor: config of the feature extractor (``None``: no image metrics).
        metrics: the ``metrics`` config (num_real, cache_dir, kid_subsets, ...).
        checkpoint_dir: where ``best.ckpt`` (lowest FID so far) is written (``None``: not).
    """

    def __init__(
        self,
        output_dir: str,
        every_n_iterations: int = 1000,
        num_samples: int = 2500,
        extractor: Any = None,
        metrics: Any = None,
        checkpoint_dir: str | None = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.every_n_iterations = every_n_iterations
        self.num_samples = num_samples
        self.extractor_cfg = extractor
        self.metrics_cfg = metrics
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.max_time_fraction = float((metrics or {}).get("max_time_fraction") or 0.1)
        minimum = (metrics or {}).get("max_time_fraction_min_seconds")
        self.warn_after_seconds = float(60 if minimum is None else minimum)
        self.image_metrics: ImageMetrics | None = None
        uses = (metrics or {}).get("use")
        #: The run's metrics (the ``metrics`` config group), set up when training starts.
        self.metrics = (default_metrics() if uses is None else
                        [build(node, f"metric '{name}'") for name, node in uses.items()])
        self.protocol: dict[str, Any] | None = None
        self.final: dict[str, float] | None = None
        self.best_fid = math.inf
        self.best_iteration: int | None = None
        self.seconds = 0.0
        self._run_start: float | None = None

    # -- state (resume keeps the best FID) --------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"best_fid": self.best_fid, "best_iteration": self.best_iteration}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_fid = float(state_dict.get("best_fid", math.inf))
        self.best_iteration = state_dict.get("best_iteration")

    # -- hooks ----------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: GANModule, stage: str) -> None:
        """Build the extractor when training starts: a missing classifier or unreadable
        weights stop the run now, not at its first evaluation."""
        self._run_start = time.perf_counter()
        if self.extractor_cfg is None or self.image_metrics is not None:
            self._setup_metrics()
            return
        from ganlab.core.config import choice

        datamodule = trainer.datamodule
        datamodule.setup(stage)
        start = time.perf_counter()
        self.image_metrics = build_image_metrics(
            self.extractor_cfg, self.metrics_cfg, datamodule,
            dict(pl_module.config.get("data") or {}), choice("extractor"))
        self._setup_metrics()
        self.seconds += time.perf_counter() - start

    def _setup_metrics(self) -> None:
        for metric in self.metrics:
            metric.setup(MetricSetup(image_metrics=self.image_metrics))

    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        if self.image_metrics is None:
            return
        start = time.perf_counter()
        metrics = self.image_metrics
        metrics.extractor.to(pl_module.device)
        if trainer.global_rank == 0:  # the real statistics: from the cache, or computed now
            metrics.real_statistics(metrics.num_real(self.num_samples))
            self.protocol = image_protocol(metrics, self.num_samples)
            self.log_protocol(trainer, self.protocol)
        self.seconds += time.perf_counter() - start

    @staticmethod
    def log_protocol(trainer: L.Trainer, protocol: dict[str, Any]) -> None:
        """The protocol as W&B config (``metrics_protocol``) and as a table (rank 0)."""
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                run = logger.experiment
                run.config.update({"metrics_protocol": protocol}, allow_val_change=True)
                import wandb

                run.log({"metrics/protocol": wandb.Table(columns=["field", "value"],
                                                         data=flatten(protocol))})

    def _evaluate(self, trainer: L.Trainer, module: GANModule) -> dict[str, float]:
        start = time.perf_counter()
        if self.image_metrics is None or trainer.world_size == 1:
            metrics = evaluate(module, trainer.datamodule, self.num_samples, self.image_metrics,
                       self.metrics)
        else:  # rank 0 measures all samples; the others get its numbers
            metrics = (evaluate(module, trainer.datamodule, self.num_samples, self.image_metrics,
                       self.metrics)
                       if trainer.global_rank == 0 else None)
            metrics = trainer.strategy.broadcast(metrics, src=0)
        scalars = {f"val/{k}": float(v) for k, v in metrics.items()
                   if k not in ("iterations", "num_samples")}
        if scalars:
            module.log_metrics(scalars)
        if trainer.global_rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            append_text(self.output_dir / "metrics_history.jsonl", json.dumps(metrics) + "\n")
        fid = metrics.get("fid")
        if fid is not None and math.isfinite(fid) and fid < self.best_fid:
            self.best_fid, self.best_iteration = float(fid), int(module.iteration)
            if self.checkpoint_dir is not None:
                self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
                save_atomic(trainer, self.checkpoint_dir / "best.ckpt")
        self.seconds += time.perf_counter() - start
        return metrics

    def cadences(self) -> tuple[int, ...]:
        """The iterations it acts at are multiples of these (GANModule ends batches there)."""
        return (self.every_n_iterations,)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if due(trainer, pl_module, self.every_n_iterations):
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.final = self._evaluate(trainer, pl_module)
        if self.best_iteration is not None:
            self.final.update(best_fid=self.best_fid, best_fid_iteration=self.best_iteration)
        if trainer.global_rank == 0:
            saved: dict[str, Any] = dict(self.final)
            protocol = dict(self.protocol or {})
            for metric in self.metrics:  # the capability metrics' own protocols
                protocol.update(metric.protocol())
            if protocol:
                saved["protocol"] = protocol
            write_metrics(self.output_dir / "metrics.json", saved)
            self.report_cost()

    def report_cost(self) -> None:
        """One line with evaluation's time and share of the run; a warning over budget, in a
        run of at least ``max_time_fraction_min_seconds``."""
        total = time.perf_counter() - (self._run_start or time.perf_counter())
        share = self.seconds / total if total > 0 else 0.0
        print(f"ganlab: evaluation took {self.seconds:.1f} s ({100 * share:.1f}% of the run)")
        if share > self.max_time_fraction and total >= self.warn_after_seconds:
            print(f"ganlab: warning: evaluation took more than "
                  f"{100 * self.max_time_fraction:.0f}% of the run; raise "
                  "metrics.every_n_iterations or lower metrics.num_samples", file=sys.stderr)
