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
COMMON = ["trainer.accelerator=cpu", "train.iterations=200", "train.batch_size=16", "logger=none",
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
    at_kill = torch.load(last, weights_only=True)
    iteration = at_kill["ganlab"]["iteration"]
    assert 10 <= iteration < 200 and iteration % 10 == 0
    # Control (below): the checkpoint with one generator weight moved, resumed for 10 iterations.
    key = next(k for k in at_kill["state_dict"] if k.startswith("generator."))
    at_kill["state_dict"][key].view(-1)[0] += 0.5
    perturbed = tmp_path / "perturbed.ckpt"
    torch.save(at_kill, perturbed)
    resumed = subprocess.run([str(BIN / "ganlab-train"), f"resume={killed}"], cwd=tmp_path,
                             env=env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    full = tmp_path / "full"
    done = subprocess.run([str(BIN / "ganlab-train"), *COMMON, f"hydra.run.dir={full}",
                           "callbacks.checkpoint.keep_every_n_iterations=10"],
                          cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(last, weights_only=True)
    assert a["ganlab"]["iteration"] == b["ganlab"]["iteration"] == 200
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name in a["state_dict"]:
        assert torch.equal(a["state_dict"][name], b["state_dict"][name]), name
    # Every half has the same seed, so a resume that ignored its checkpoint and trained from
    # scratch would also end bit-identical; from the perturbed checkpoint it must not.
    control = tmp_path / "control"
    args = [*COMMON, f"train.iterations={iteration + 10}", f"ckpt_path={perturbed}",
            f"hydra.run.dir={control}"]
    done = subprocess.run([str(BIN / "ganlab-train"), *args], cwd=tmp_path, env=env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    c = torch.load(control / "checkpoints" / "last.ckpt", weights_only=True)
    ref = torch.load(full / "checkpoints" / f"iter_{iteration + 10}.ckpt", weights_only=True)
    assert c["ganlab"]["iteration"] == ref["ganlab"]["iteration"] == iteration + 10
    assert c["state_dict"].keys() == ref["state_dict"].keys()
    assert not all(torch.equal(c["state_dict"][k], ref["state_dict"][k])
                   for k in ref["state_dict"] if k.startswith("discriminator."))
