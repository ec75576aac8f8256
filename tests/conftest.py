"""Shared fixtures: compose the real Hydra config for a run in a temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ganlab.cli import config_dir

#: Overrides that make a run small and quiet for tests.
FAST = [
    "logger=none",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "train.batch_size=32",
    "train.log_every_n_iterations=5",
    "metrics.num_samples=200",
]


def compose_config(
    overrides: list[str], output_dir: Path, config_name: str = "train"
) -> DictConfig:
    """The config ``ganlab-train <overrides>`` would run with, writing into ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg(*overrides, out=None)``: a fast test config (see ``FAST``)."""

    def make(*overrides: str, out: Path | None = None) -> DictConfig:
        return compose_config([*FAST, *overrides], out or tmp_path / "run")

    yield make
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None  # later tests run outside Hydra


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test talks to W&B servers or depends on the caller's thread count."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    torch.set_num_threads(min(torch.get_num_threads(), 2))
