"""Cluster and search configs: the SLURM launcher and the Optuna sweeper compose, the CLI
accepts their syntax, and a tiny Optuna study runs end to end."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from ganlab.app.cli import check_overrides, config_dir, normalize_group_overrides

BIN = Path(sys.executable).parent


def hydra_config(*overrides: str):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            return compose("train", overrides=list(overrides), return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def test_slurm_launcher_composes_with_one_task_per_device() -> None:
    cfg = hydra_config("hydra/launcher=slurm", "trainer=ddp_split", "trainer.devices=4")
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher." \
                                "SlurmLauncher"
    assert OmegaConf.select(cfg, "hydra.launcher.tasks_per_node") == 4
    assert OmegaConf.select(cfg, "hydra.launcher.gpus_per_node") == 4
    assert OmegaConf.select(cfg, "hydra.launcher.nodes") == 1
    assert launcher.timeout_min == 240
    # The plugin's own config composes too.
    plain = hydra_config("hydra/launcher=submitit_slurm")
    assert plain.hydra.launcher._target_ == launcher._target_


@pytest.mark.parametrize("spelling", ["hparams_search", "+hparams_search"])
def test_optuna_search_composes(spelling: str) -> None:
    args = normalize_group_overrides("train", [f"{spelling}=toy_grid_optuna"])
    cfg = hydra_config(*args)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.direction == "minimize"
    assert sorted(sweeper.params) == ["optim.discriminator.lr", "optim.generator.lr",
                                      "train.batch_size", "train.d_steps"]
    assert sweeper.params["train.d_steps"] == "range(1, 4)"
    assert cfg.name == "toy_grid_optuna" and cfg.train.iterations == 3000


def test_check_overrides_accepts_optuna_syntax() -> None:
    check_overrides("train", ["-m", "+hparams_search=toy_grid_optuna",
                              "optim.generator.lr=interval(1e-4,1e-3)", "train.d_steps=range(1,3)",
                              "optim.discriminator.lr=tag(log, interval(1e-4, 1e-3))",
                              "train.batch_size=choice(64,128)"])


def test_check_overrides_rejects_an_unknown_search(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        check_overrides("train", ["+hparams_search=nope"])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == \
        "ganlab: error: unknown hparams_search 'nope'; valid: toy_grid_optuna"


def test_a_two_trial_optuna_study_runs_end_to_end(tmp_path: Path) -> None:
    sweep = tmp_path / "study"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(BIN / "ganlab-train"), "-m", "hparams_search=toy_grid_optuna",
         "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=1", "train.iterations=5",
         "train.batch_size=16", "metrics.num_samples=100", "logger=none",
         "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
         f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "optimization_results.yaml"]
    values = [json.loads((sweep / job / "metrics.json").read_text())["reverse_kl"]
              for job in ("0", "1")]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    best = float(results.best_value)
    assert best == min(values) or (math.isinf(best) and all(map(math.isinf, values)))
    # Each trial drew its own values within the search space (batch size fixed above).
    for job in ("0", "1"):
        overrides = OmegaConf.to_container(OmegaConf.load(sweep / job / ".hydra" /
                                                          "overrides.yaml"))
        drawn = dict(o.split("=", 1) for o in overrides if o.startswith(("optim.", "train.d_")))
        assert 1e-4 <= float(drawn["optim.generator.lr"]) <= 3e-3
        assert int(drawn["train.d_steps"]) in (1, 2, 3)
