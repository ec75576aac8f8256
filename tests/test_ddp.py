"""Data parallelism: 2 CPU processes (gloo) reproduce one process with the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

BIN = Path(sys.executable).parent


def train(tmp_path: Path, out: str, *args: str) -> None:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    common = ["trainer.accelerator=cpu", "train.iterations=20", "logger=none",
              "metrics.every_n_iterations=10", "metrics.num_samples=500",
              "trainer.deterministic=true", f"hydra.run.dir={tmp_path / out}"]
    result = subprocess.run([str(BIN / "ganlab-train"), *common, *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_two_processes_match_one_process_with_the_global_batch(tmp_path: Path) -> None:
    train(tmp_path, "ddp", "trainer=ddp", "trainer.devices=2", "train.batch_size=16")
    train(tmp_path, "single", "train.batch_size=32")
    a = torch.load(tmp_path / "ddp" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(tmp_path / "single" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["ganlab"]["iteration"] == b["ganlab"]["iteration"] == 20
    # Same data and noise per global batch; only the order of float sums differs.
    for key in b["state_dict"]:
        torch.testing.assert_close(a["state_dict"][key], b["state_dict"][key], rtol=0, atol=1e-5)
    # Metrics written once (rank 0), and equal up to the same tolerance.
    ma = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert ma["iterations"] == mb["iterations"] == 20
    assert abs(ma["hq_fraction"] - mb["hq_fraction"]) <= 2 / 500
