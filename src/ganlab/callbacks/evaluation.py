"""Periodic and final evaluation: ``val/*`` scalars and ``metrics.json``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L

from ganlab.callbacks import due
from ganlab.evaluation import evaluate
from ganlab.module import GANModule


def write_metrics(path: Path, metrics: dict[str, float]) -> None:
    """Write ``metrics`` as JSON (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


class EvaluationCallback(L.Callback):
    """Evaluates G every ``every_n_iterations`` (logs ``val/<metric>``, appends a line to
    ``<output_dir>/metrics_history.jsonl``) and at the end of training, where it writes
    ``<output_dir>/metrics.json``."""

    def __init__(self, output_dir: str, every_n_iterations: int = 1000, num_samples: int = 2500):
        self.output_dir = Path(output_dir)
        self.every_n_iterations = every_n_iterations
        self.num_samples = num_samples
        self.seconds = 0.0
        self.final: dict[str, float] | None = None

    def _evaluate(self, trainer: L.Trainer, module: GANModule) -> dict[str, float]:
        start = time.perf_counter()
        metrics = evaluate(module, trainer.datamodule, self.num_samples)
        self.seconds += time.perf_counter() - start
        scalars = {f"val/{k}": float(v) for k, v in metrics.items()
                   if k not in ("iterations", "num_samples")}
        if scalars:
            module.log_metrics(scalars)
        if trainer.global_rank == 0:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / "metrics_history.jsonl", "a") as history:
                history.write(json.dumps(metrics) + "\n")
        return metrics

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if due(trainer, pl_module, self.every_n_iterations):
            self._evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self.final = self._evaluate(trainer, pl_module)
        if trainer.global_rank == 0:
            write_metrics(self.output_dir / "metrics.json", self.final)
