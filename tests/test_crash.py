"""Crash safety: a run killed with SIGKILL resumes from its last checkpoint and ends exactly as
an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

BIN = Path(sys.executable).parent
COMMON = ["train.iterations=200", "train.batch_size=16", "logger=none",
          "metrics.every_n_iterations=0", "metrics.num_samples=100", "trainer.deterministic=true",
          "callbacks.checkpoint.every_n_iterations=10"]


def env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    proc = subprocess.Popen([str(BIN / "ganlab-train"), *COMMON, f"hydra.run.dir={killed}"],
                            cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # kill somewhere after the first checkpoints, at no chosen moment
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    iteration = torch.load(last, weights_only=True)["ganlab"]["iteration"]
    assert 10 <= iteration < 200 and iteration % 10 == 0
    resumed = subprocess.run([str(BIN / "ganlab-train"), f"resume={killed}"], cwd=tmp_path,
                             env=env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = tmp_path / "full"
    done = subprocess.run([str(BIN / "ganlab-train"), *COMMON, f"hydra.run.dir={full}"],
                          cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["ganlab"]["iteration"] == b["ganlab"]["iteration"] == 200
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
