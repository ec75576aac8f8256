"""``ganlab-train``: train a GAN from the Hydra config in ``conf/train.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf, open_dict

from ganlab.app.cli import entry_point, ranks_in_this_job
from ganlab.app.sweep import load_identity, run_identity, save_identity

if TYPE_CHECKING:  # torch and Lightning are imported when a run starts: a typo fails fast
    import lightning as L


def train(cfg: DictConfig) -> dict[str, float]:
    """Train the GAN that ``cfg`` describes; returns the final metrics."""
    import lightning as L
    from lightning.pytorch.loggers import WandbLogger
    from lightning.pytorch.utilities import rank_zero_only

    from ganlab.adapter.callbacks.evaluation import EvaluationCallback
    from ganlab.app.build import build_datamodule, build_module, build_trainer, validate
    from ganlab.app.console import tidy_lightning_logging

    tidy_lightning_logging()
    validate(cfg)
    check_counts(cfg)
    continue_requeued_job(cfg)
    ckpt_path = cfg.get("ckpt_path")
    identity = run_identity(cfg)
    if ckpt_path is not None:
        identity = continue_wandb_run(cfg, Path(ckpt_path)) or identity
    group_wandb_run(cfg, identity)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    if getattr(rank_zero_only, "rank", 0) == 0:  # the other ranks start after it is made
        from lightning.pytorch.utilities.seed import isolate_rng

        from ganlab.app.first_use import ensure_classifier

        with isolate_rng():  # training it leaves the run's seeded random state as it was
            ensure_classifier(cfg, datamodule)
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, module)
    extra_tags = module.family.tags() + override_tags()
    # Before fit, trainer.global_rank is 0 in every process; the launcher's env says the rank.
    rank_zero = getattr(rank_zero_only, "rank", 0) == 0
    for logger in trainer.loggers:
        logger.log_hyperparams(module.config)
        if isinstance(logger, WandbLogger) and rank_zero:
            run = logger.experiment
            run.config.update({k: identity[k] for k in ("variant", "sweep", "seed")},
                              allow_val_change=True)
            tags = list(run.tags or ())
            run.tags = tuple(dict.fromkeys(tags + extra_tags))  # each tag once, in order
    if rank_zero:
        save_wandb_id(cfg, trainer)
        folder = OmegaConf.select(cfg, "callbacks.checkpoint.dirpath")
        if folder is not None:
            save_identity(folder, identity)
    with ranks_in_this_job():
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    metrics: dict[str, float] = {}
    for callback in trainer.callbacks:
        if isinstance(callback, EvaluationCallback) and callback.final is not None:
            metrics = callback.final
    if trainer.global_rank == 0:
        report(cfg, trainer, metrics)
    return metrics


#: Counts where 0 means "never" (periodic work) and negatives are errors.
NON_NEGATIVE = ("metrics.every_n_iterations", "callbacks.checkpoint.every_n_iterations",
                "callbacks.checkpoint.keep_every_n_iterations")


def check_counts(cfg: DictConfig) -> None:
    """One line for a count that cannot work: a negative interval, no evaluation samples."""
    from ganlab.core.errors import GanlabError

    checks = [(key, 0, "a non-negative integer") for key in NON_NEGATIVE]
    checks.append(("metrics.num_samples", 1, "a positive integer"))
    for key, low, what in checks:
        value = OmegaConf.select(cfg, key)
        if value is None and key.startswith("callbacks."):
            continue  # callback removed on the command line
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise GanlabError(f"{key} must be {what}, got {value!r}")


def override_tags() -> list[str]:
    """The command-line overrides of this job (in a sweep: the swept values), as W&B tags."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    skip = ("hydra.", "ckpt_path=", "resume=", "paths.", "logger")
    return [str(o)[:64] for o in HydraConfig.get().overrides.task if not str(o).startswith(skip)]


def continue_requeued_job(cfg: DictConfig) -> None:
    """A SLURM job that was requeued (``SLURM_RESTART_COUNT`` ≥ 1) runs the same command in the
    same run directory again: continue from the newest checkpoint there (and so in the same
    W&B run) instead of starting over."""
    import os

    from ganlab.app.cli import latest_checkpoint

    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    folder = OmegaConf.select(cfg, "callbacks.checkpoint.dirpath")
    if cfg.get("ckpt_path") is not None or not restarts.isdigit() or int(restarts) < 1 \
            or folder is None or not ((Path(folder) / "last.ckpt").is_file()
                                      or any(Path(folder).glob("iter_*.ckpt"))):
        return
    ckpt = latest_checkpoint(Path(folder))
    with open_dict(cfg):
        cfg.ckpt_path = str(ckpt)
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("SLURM_PROCID", "0") == "0":
        print(f"ganlab: requeued SLURM job (restart {restarts}): continuing from {ckpt}",
              flush=True)


#: Beside the checkpoints: the W&B run id, so a resume continues the same run.
WANDB_ID_FILE = "wandb_id.txt"


def save_wandb_id(cfg: DictConfig, trainer: L.Trainer) -> None:
    """Write the W&B run id into the checkpoint folder (call on rank 0, when W&B logs)."""
    from lightning.pytorch.loggers import WandbLogger

    folder = OmegaConf.select(cfg, "callbacks.checkpoint.dirpath")
    if folder is None:
        return
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and getattr(logger.experiment, "id", None):
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / WANDB_ID_FILE).write_text(f"{logger.experiment.id}\n")


def group_wandb_run(cfg: DictConfig, identity: dict[str, Any]) -> None:
    """The W&B group (the sweep) and job type (the variant) of this run."""
    wandb_cfg = OmegaConf.select(cfg, "logger.wandb")
    if wandb_cfg is not None:
        with open_dict(cfg):
            wandb_cfg.group = identity["group"]
            wandb_cfg.job_type = identity["job_type"]


def continue_wandb_run(cfg: DictConfig, ckpt_path: Path) -> dict[str, Any] | None:
    """Check the checkpoint (one line, before anything is written, unless ``resume=`` already
    read it) and log into its W&B run (same id: the curves continue); returns the run's
    identity in its sweep (:mod:`ganlab.app.sweep`), which the resumed run keeps."""
    from ganlab.app.cli import already_read
    from ganlab.core.checkpoints import load_checkpoint

    checkpoint = None if already_read(ckpt_path) else load_checkpoint(ckpt_path)
    id_file = ckpt_path.parent / WANDB_ID_FILE
    if id_file.is_file():
        run_id = id_file.read_text().strip() or None
    else:  # a checkpoint from before the id file existed
        checkpoint = checkpoint or load_checkpoint(ckpt_path)
        run_id = checkpoint["ganlab"].get("wandb_id")
    wandb_cfg = OmegaConf.select(cfg, "logger.wandb")
    if run_id and wandb_cfg is not None and wandb_cfg.get("id") is None:
        with open_dict(cfg):
            wandb_cfg.id = run_id
            wandb_cfg.resume = "allow"
    return load_identity(ckpt_path.parent)


def report(cfg: DictConfig, trainer: L.Trainer, metrics: dict[str, float]) -> None:
    """Print where the run's results are."""
    from lightning.pytorch.loggers import WandbLogger

    out = Path(cfg.paths.output_dir)
    print(f"\nganlab: finished {metrics.get('iterations', '?')} iterations")
    shown = {k: v for k, v in metrics.items() if k not in ("iterations", "num_samples")}
    if shown:
        print("ganlab: " + ", ".join(f"{k} = {v:.4g}" for k, v in shown.items()))
    print(f"ganlab: metrics.json: {out / 'metrics.json'}")
    print(f"ganlab: checkpoint:   {out / 'checkpoints' / 'last.ckpt'}")
    for logger in trainer.loggers:
        run_dir = getattr(getattr(logger, "experiment", None), "dir", None)
        if isinstance(logger, WandbLogger) and run_dir:
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
