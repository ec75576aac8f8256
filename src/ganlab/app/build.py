"""Builds the objects of a run (data, the model family, the trainer) from its Hydra config.

Nothing here names a family, network, loss or plugin: ``model=`` chooses the family, whose
``from_config`` builds its players and plugins, and every other object comes from
``_target_``."""

from __future__ import annotations

import warnings

import lightning as L
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from ganlab.adapter.module import GANModule
from ganlab.core.config import build, choice
from ganlab.core.errors import GanlabError
from ganlab.data.base import GANDataModule

__all__ = ["build", "build_datamodule", "build_module", "build_trainer", "choice", "validate"]


def _positive_int(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise GanlabError(f"{key} must be a positive integer, got {value!r}")


def validate(cfg: DictConfig) -> None:
    """Checks the values that Hydra cannot check by itself."""
    for key in ("train.iterations", "train.d_steps", "train.batch_size", "generator.latent_dim",
                "train.log_every_n_iterations"):
        _positive_int(cfg, key)
    if not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise GanlabError(f"seed must be an integer, got {cfg.seed!r}")


def build_datamodule(cfg: DictConfig) -> GANDataModule:
    """The datamodule, with its data loaded (so ``data_shape`` is known)."""
    datamodule = build(cfg.data, "data")
    datamodule.setup("fit")
    return datamodule


def build_module(cfg: DictConfig, datamodule: GANDataModule) -> GANModule:
    """The LightningModule for ``cfg``: the family that ``model=`` chooses (its class's
    ``from_config``), on ``datamodule``'s data."""
    target = OmegaConf.select(cfg, "model._target_")
    try:
        family_class = get_class(str(target))
    except Exception:
        raise GanlabError(f"cannot build model: no family class {target!r}") from None
    family_class.check_config(cfg)
    family = family_class.from_config(cfg, datamodule, build)
    return GANModule(
        family,
        log_every_n_iterations=cfg.train.log_every_n_iterations,
        seed=cfg.seed,
        iterations_per_batch=cfg.train.get("iterations_per_batch", 50),
        compile=bool(cfg.train.get("compile", False)),
        compile_mode=cfg.train.get("compile_mode", "default"),
        config=OmegaConf.to_container(cfg, resolve=True),  # type: ignore[arg-type]
    )


def build_trainer(cfg: DictConfig, module: GANModule | None = None) -> L.Trainer:
    """The Lightning Trainer with the configured loggers and callbacks (``module``: the run's
    LightningModule, whose family says how many optimizer steps one iteration takes)."""
    # The stream's __len__ is exact (one item per iteration) and resumes where it stopped.
    warnings.filterwarnings("ignore", message=".*`IterableDataset` has `__len__` defined.*")
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before.*")
    warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*is deprecated.*")
    loggers = [build(node, f"logger '{name}'") for name, node in (cfg.get("logger") or {}).items()]
    callbacks = [
        build(node, f"callback '{name}'") for name, node in (cfg.get("callbacks") or {}).items()
    ]
    # Lightning counts every optimizer step (the GAN's: k discriminator steps + 1 generator step).
    steps = (module.family.steps_per_iteration if module is not None
             else cfg.train.d_steps + 1)
    max_steps = steps * cfg.train.iterations
    return build(
        cfg.trainer, "trainer", logger=loggers or False, callbacks=callbacks,
        default_root_dir=cfg.paths.output_dir, max_steps=max_steps,
    )
