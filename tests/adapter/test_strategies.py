"""Data parallelism: 2 CPU processes (gloo) reproduce one process with the same global batch,
under both strategies (one DDP around the module; G and D in a DDP each), and only rank 0
writes: one metrics line per evaluation, one checkpoint, no stray directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BIN = Path(sys.executable).parent
# k = 2: D's forward in each G step (its parameters frozen) is followed by two D steps, which
# must find D's reducer ready (no "Expected to have finished reduction in the prior iteration").
# The different order of the float32 sums (1e-7) grows chaotically through the adversarial
# dynamics and Adam (3.6e-5 after 10 iterations, 0.1 after 100; in float64 it stays at 1e-15),
# so the comparison is made after 20 iterations.
COMMON = ["trainer.accelerator=cpu", "train.iterations=20", "train.d_steps=2", "logger=none",
          "metrics.every_n_iterations=10", "metrics.num_samples=500",
          "trainer.deterministic=true", "trainer.enable_progress_bar=false",
          "~callbacks.progress_bar"]
#: Largest difference allowed between 2 processes and 1 (float32 sums in another order).
ATOL = 1e-5


def train(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(BIN / "ganlab-train"), *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process with the global batch of 32."""
    root = tmp_path_factory.mktemp("single")
    train(root, *COMMON, "train.batch_size=32", f"hydra.run.dir={root / 'run'}")
    return root / "run"


@pytest.fixture(scope="module")
def half(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One process with half the batch: what rank 0 would train on without the all-reduce."""
    root = tmp_path_factory.mktemp("half")
    train(root, *COMMON, "train.batch_size=16", f"hydra.run.dir={root / 'run'}")
    return root / "run"


def test_half_the_batch_differs_by_far_more_than_the_tolerance(single: Path, half: Path) -> None:
    """The control of the comparison below: a run on rank 0's half of the batch alone ends
    more than 100 times the tolerance away."""
    a = torch.load(half / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(single / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in b) > 100 * ATOL


@pytest.mark.parametrize("strategy", ["ddp", "ddp_split"])
def test_two_processes_match_one_process_with_the_global_batch(
    tmp_path: Path, single: Path, strategy: str
) -> None:
    out = tmp_path / "run"
    train(tmp_path, *COMMON, f"trainer={strategy}", "trainer.devices=2", "train.batch_size=16",
          f"hydra.run.dir={out}")
    a = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(single / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["ganlab"]["iteration"] == b["ganlab"]["iteration"] == 20
    # Same data and noise per global batch; only the order of float sums differs. Without the
    # all-reduce of either network's gradients, rank 0 would train on half the batch and its
    # weights would differ by far more (test_half_the_batch_differs_by_far_more_than_...).
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in b["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], rtol=0, atol=ATOL)
    # Metrics computed once, by rank 0, from its (equal) generator: none doubled.
    ma = json.loads((out / "metrics.json").read_text())
    mb = json.loads((single / "metrics.json").read_text())
    assert ma["iterations"] == mb["iterations"] == 20
    assert ma["num_samples"] == mb["num_samples"] == 500
    assert abs(ma["hq_fraction"] - mb["hq_fraction"]) <= 2 / 500
    assert abs(ma["modes_covered"] - mb["modes_covered"]) <= 1
    lines = (out / "metrics_history.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines]
    assert [h["iterations"] for h in history] == [10, 20]
    # Rank 1 wrote nothing of its own: no .hydra of its own, no second directory; its Hydra
    # log is the only trace, in the same run directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert sorted(p.name for p in out.iterdir()) == [
        ".hydra", "checkpoints", "metrics.json", "metrics_history.jsonl", "samples",
        "train.log", "train_ddp_process_1.log"]
    # rank 0's files only: the checkpoint and the run's identity (variant, sweep, seed)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.ckpt",
                                                                       "sweep_run.json"]


def test_multirun_with_ddp_makes_only_the_sweep_directories(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    train(tmp_path, "-m", "trainer=ddp_split", "trainer.devices=2", "trainer.accelerator=cpu",
          "seed=0,1", "train.iterations=5", "train.batch_size=16", "logger=none",
          "metrics.every_n_iterations=0", "metrics.num_samples=100",
          "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
          f"hydra.sweep.dir={sweep}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
    for job, seed in (("0", 0), ("1", 1)):
        assert json.loads((sweep / job / "metrics.json").read_text())["iterations"] == 5
        lines = (sweep / job / "metrics_history.jsonl").read_text().splitlines()
        assert len(lines) == 1
        config = torch.load(sweep / job / "checkpoints" / "last.ckpt",
                            weights_only=True)["ganlab"]["config"]
        assert config["seed"] == seed
        assert (sweep / job / "train_ddp_process_1.log").is_file()
