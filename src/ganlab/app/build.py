"""Builds the objects of a run (data, networks, loss, tricks, trainer) from its Hydra config."""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from ganlab.adapter.module import GANModule
from ganlab.conditioning.base import Conditioning, Unconditional
from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.data.base import GANDataModule
from ganlab.losses import WGANGP, require_per_sample_critic


def build(node: Any, what: str, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)``, turning any failure into a one-line :class:`GanlabError`."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, GanlabError):
            raise cause from None
        detail = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        raise GanlabError(f"cannot build {what}: {detail}") from None


def choice(group: str) -> str:
    """The config chosen for ``group`` in this Hydra run (the group's name outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group, group))
    return group


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


def _check_shapes(module: GANModule, data_shape: tuple[int, ...], cfg: DictConfig) -> None:
    """Fail with one line when G's output or D's input does not fit the data."""
    gen_name, disc_name, data_name = (choice(g) for g in ("generator", "discriminator", "data"))
    with evaluating(module.generator, module.discriminator), torch.no_grad():
        try:
            latent = module.sample_z(2, torch.Generator().manual_seed(0))
            out = module.generator(latent)
        except Exception as exc:  # a mis-sized network fails inside torch
            raise GanlabError(f"generator '{gen_name}' fails on z: {exc}") from None
        if tuple(out.shape[1:]) != tuple(data_shape):
            raise GanlabError(
                f"generator '{gen_name}' makes samples of shape {tuple(out.shape[1:])} but "
                f"data '{data_name}' has shape {tuple(data_shape)}"
            )
        try:
            logits, _ = module.conditioning.discriminate(
                module.discriminator, out, module.fake_condition(latent)
            )
        except Exception as exc:
            raise GanlabError(
                f"discriminator '{disc_name}' does not accept data '{data_name}' of shape "
                f"{tuple(data_shape)}: {exc}"
            ) from None
        if tuple(logits.shape) != (2,):
            raise GanlabError(
                f"discriminator '{disc_name}' must return one logit per sample, "
                f"got shape {tuple(logits.shape)}"
            )


#: Tricks that call D on ``x`` alone (or replace D): unusable when D needs a condition.
_D_ALONE_TRICKS = ("r1", "gradient_penalty", "feature_matching", "minibatch_discrimination")


def build_conditioning(cfg: DictConfig, datamodule: GANDataModule) -> Conditioning:
    """The run's conditioning (``conditioning=<name>``; unconditional when ``null``), bound to
    the data (its number of classes, its labelled examples)."""
    node = cfg.get("conditioning")
    conditioning = Unconditional() if node is None else build(node, "conditioning")
    conditioning.bind(datamodule)
    return conditioning


def _check_conditioning(conditioning: Conditioning, tricks: list) -> None:
    """One line for combinations the conditioning cannot support."""
    if isinstance(conditioning, Unconditional):
        return
    names = [t.name for t in tricks]
    clash = [n for n in names if n == "minibatch_discrimination"]
    if conditioning.conditions_discriminator:
        clash = [n for n in names if n in _D_ALONE_TRICKS]
    if clash:
        raise GanlabError(
            f"conditioning={conditioning.name} cannot be combined with tricks {', '.join(clash)} "
            "(they call or replace the discriminator without its condition)"
        )


def build_module(cfg: DictConfig, datamodule: GANDataModule) -> GANModule:
    """The GANModule for ``cfg`` on ``datamodule``'s data shape."""
    shape = tuple(datamodule.data_shape)
    conditioning = build_conditioning(cfg, datamodule)
    extra = {}
    if cfg.generator.net.get("output") == "auto":  # tanh for images in [-1, 1], else linear
        extra["output"] = "tanh" if len(shape) == 3 else "linear"
    if conditioning.code_dim:  # G's input is cat(z, code)
        extra["latent_dim"] = cfg.generator.latent_dim + conditioning.code_dim
    generator = build(cfg.generator.net, "generator", data_shape=shape, **extra)
    discriminator = build(cfg.discriminator.net, "discriminator",
                          data_shape=conditioning.discriminator_shape(shape))
    loss = build(cfg.loss, "loss")
    tricks = [build(node, f"trick '{name}'") for name, node in (cfg.get("tricks") or {}).items()]
    _check_conditioning(conditioning, tricks)
    if conditioning.conditions_discriminator and isinstance(loss, WGANGP):
        raise GanlabError(
            f"conditioning={conditioning.name} cannot be combined with loss=wgan_gp "
            "(its penalty calls the discriminator without its condition)"
        )
    config = OmegaConf.to_container(cfg, resolve=True)
    module = GANModule(
        generator=generator,
        discriminator=discriminator,
        loss=loss,
        g_optimizer=build(cfg.optim.generator, "generator optimizer"),
        d_optimizer=build(cfg.optim.discriminator, "discriminator optimizer"),
        latent_dim=cfg.generator.latent_dim,
        noise=cfg.train.noise,
        tricks=tricks,
        log_every_n_iterations=cfg.train.log_every_n_iterations,
        seed=cfg.seed,
        config=config,  # type: ignore[arg-type]
        conditioning=conditioning,
    )
    _check_shapes(module, shape, cfg)
    if isinstance(module.loss, WGANGP):
        require_per_sample_critic(module.discriminator, "loss=wgan_gp")
    return module


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """The Lightning Trainer with the configured loggers and callbacks."""
    # The stream's __len__ is exact (one item per iteration) and resumes where it stopped.
    warnings.filterwarnings("ignore", message=".*`IterableDataset` has `__len__` defined.*")
    warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before.*")
    warnings.filterwarnings("ignore", message=".*treespec, LeafSpec.*is deprecated.*")
    loggers = [build(node, f"logger '{name}'") for name, node in (cfg.get("logger") or {}).items()]
    callbacks = [
        build(node, f"callback '{name}'") for name, node in (cfg.get("callbacks") or {}).items()
    ]
    # Lightning counts every optimizer step: k discriminator steps + 1 generator step.
    max_steps = (cfg.train.d_steps + 1) * cfg.train.iterations
    return build(
        cfg.trainer, "trainer", logger=loggers or False, callbacks=callbacks,
        default_root_dir=cfg.paths.output_dir, max_steps=max_steps,
    )
