"""``ganlab-train``: train a GAN from the Hydra config in ``conf/train.yaml``."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger
from omegaconf import DictConfig, OmegaConf, open_dict

from ganlab.build import build_datamodule, build_module, build_trainer, validate
from ganlab.callbacks.evaluation import EvaluationCallback
from ganlab.checkpoints import load_checkpoint
from ganlab.cli import entry_point


def train(cfg: DictConfig) -> dict[str, float]:
    """Train the GAN that ``cfg`` describes; returns the final metrics."""
    validate(cfg)
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None:
        continue_wandb_run(cfg, load_checkpoint(ckpt_path))
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg)
    extra_tags = [f"trick={tag}" for trick in module.tricks for tag in trick.tags()]
    extra_tags += override_tags()
    for logger in trainer.loggers:
        logger.log_hyperparams(module.config)
        if extra_tags and isinstance(logger, WandbLogger) and trainer.global_rank == 0:
            run = logger.experiment
            tags = list(run.tags or ())
            run.tags = tuple(tags + [t for t in extra_tags if t not in tags])
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics: dict[str, float] = {}
    for callback in trainer.callbacks:
        if isinstance(callback, EvaluationCallback) and callback.final is not None:
            metrics = callback.final
    if trainer.global_rank == 0:
        report(cfg, trainer, metrics)
    return metrics


def override_tags() -> list[str]:
    """The command-line overrides of this job (in a sweep: the swept values), as W&B tags."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    skip = ("hydra.", "ckpt_path=", "resume=", "paths.", "logger")
    return [str(o)[:64] for o in HydraConfig.get().overrides.task if not str(o).startswith(skip)]


def continue_wandb_run(cfg: DictConfig, checkpoint: dict) -> None:
    """Log a resumed run into the W&B run of its checkpoint (same id: the curves continue)."""
    run_id = checkpoint["ganlab"].get("wandb_id")
    wandb_cfg = OmegaConf.select(cfg, "logger.wandb")
    if run_id and wandb_cfg is not None and wandb_cfg.get("id") is None:
        with open_dict(cfg):
            wandb_cfg.id = run_id
            wandb_cfg.resume = "allow"


def report(cfg: DictConfig, trainer: L.Trainer, metrics: dict[str, float]) -> None:
    """Print where the run's results are."""
    out = Path(cfg.paths.output_dir)
    print(f"\nganlab: finished {metrics.get('iterations', '?')} iterations")
    shown = {k: v for k, v in metrics.items() if k not in ("iterations", "num_samples")}
    if shown:
        print("ganlab: " + ", ".join(f"{k} = {v:.4g}" for k, v in shown.items()))
    print(f"ganlab: metrics.json: {out / 'metrics.json'}")
    print(f"ganlab: checkpoint:   {out / 'checkpoints' / 'last.ckpt'}")
    for logger in trainer.loggers:
        run_dir = getattr(getattr(logger, "experiment", None), "dir", None)
        if type(logger).__name__ == "WandbLogger" and run_dir:
            run_root = Path(run_dir).parent
            mode = "offline" if "offline-run" in run_root.name else "online"
            print(f"ganlab: W&B run ({mode}): {run_root}")
            if mode == "offline":
                print(f"ganlab: upload it with: wandb sync {run_root}")


@entry_point("train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    finally:
        # Each job of a multirun must open its own W&B run, not reuse this one.
        import wandb

        if wandb.run is not None:
            wandb.finish()
    return metrics.get("reverse_kl")


if __name__ == "__main__":
    main()
