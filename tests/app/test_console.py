"""What ``ganlab-train`` prints, run once (tiny, in a subprocess, W&B offline and not
silenced): each Lightning line once, no advertisement, no W&B deprecation warning of ours, a
progress bar counting iterations, no evaluation-share warning in a run of seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> tuple[str, str, Path]:
    cwd = tmp_path_factory.mktemp("output")
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SILENT"}
    env.update(WANDB_MODE="offline", WANDB_DIR=str(cwd))
    out = cwd / "run"
    result = subprocess.run(
        [str(BIN / "ganlab-train"), "train.iterations=4", "train.batch_size=32",
         "metrics.num_samples=50", "callbacks.progress_bar.refresh_rate=1",
         f"hydra.run.dir={out}"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr, out


def test_each_lightning_line_is_printed_once_and_kept_in_the_runs_log(printed) -> None:
    stdout, stderr, out = printed
    both = stdout + stderr
    assert both.count("GPU available: False, used: False") == 1
    assert both.count("`Trainer.fit` stopped: `max_steps=8` reached.") == 1
    assert "GPU available: False, used: False" in (out / "train.log").read_text()


def test_no_advertisement_and_no_wandb_warning_of_ours(printed) -> None:
    stdout, stderr, _ = printed
    both = stdout + stderr
    assert "wandb: Tracking run with wandb" in stderr  # W&B does speak: it is not silenced
    assert "litlogger" not in both and "Tip:" not in both
    assert "anonymous" not in both
    assert "WARNING" not in stderr


def test_the_progress_bar_counts_iterations(printed) -> None:
    stdout, _, _ = printed
    assert "Epoch" not in stdout and "v_num" not in stdout
    frames = [f.strip() for f in stdout.replace("\r", "\n").splitlines()
              if f.strip().startswith("iterations:")]
    assert frames[0].startswith("iterations:   0%|") and " 0/4 [" in frames[0]
    assert [f" {n}/4 [" in "".join(frames) for n in range(1, 5)] == [True] * 4
    assert " 4/4 [" in frames[-1]


def test_no_evaluation_share_warning_in_a_run_of_seconds(printed) -> None:
    stdout, stderr, _ = printed
    assert "ganlab: evaluation took " in stdout
    assert "ganlab: warning" not in stderr
