"""``ganlab-eval ckpt_path=<file>``: evaluate a checkpoint and print the metrics as JSON."""

from __future__ import annotations

import json

from omegaconf import DictConfig, OmegaConf

from ganlab.build import build_datamodule, build_module
from ganlab.checkpoints import load_checkpoint
from ganlab.cli import entry_point
from ganlab.evaluation import evaluate


def evaluate_checkpoint(ckpt_path: str, num_samples: int | None = None) -> dict[str, float]:
    """The metrics of the generator stored in ``ckpt_path`` (as written to metrics.json)."""
    checkpoint = load_checkpoint(ckpt_path)
    cfg = OmegaConf.create(checkpoint["ganlab"]["config"])
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    module.load_state_dict(checkpoint["state_dict"])
    module.iteration = int(checkpoint["ganlab"]["iteration"])
    n = num_samples if num_samples is not None else cfg.metrics.num_samples
    return evaluate(module, datamodule, n)


@entry_point("eval")
def main(cfg: DictConfig) -> None:
    metrics = evaluate_checkpoint(cfg.ckpt_path, cfg.metrics.num_samples)
    print(json.dumps(metrics, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
