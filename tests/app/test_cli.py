"""The console scripts end to end, in subprocesses: results, resume, exit codes (bad input to
ganlab-train: tests/app/test_bad_input.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return subprocess.run([str(BIN / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_train_then_eval_prints_the_same_metrics(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run("ganlab-train", "train.iterations=30", "train.batch_size=64",
                 "metrics.every_n_iterations=10", "metrics.num_samples=500",
                 f"hydra.run.dir={out}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"metrics.json: {out / 'metrics.json'}" in result.stdout
    assert "W&B run (offline)" in result.stdout
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["iterations"] == 30
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    evaluated = run("ganlab-eval", f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads(evaluated.stdout) == saved


def test_eval_of_a_foreign_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    result = run("ganlab-eval", f"ckpt_path={bad}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"ganlab: error: cannot read checkpoint {bad}")
    assert "Traceback" not in result.stderr


def test_multirun_gives_one_run_per_job_in_one_group(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    result = run("ganlab-train", "-m", "loss=minimax,hinge", "train.iterations=5",
                 "train.batch_size=16", "metrics.every_n_iterations=0", "metrics.num_samples=100",
                 f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for job in ("0", "1"):
        assert json.loads((sweep / job / "metrics.json").read_text())["iterations"] == 5
        runs = list((sweep / job / "wandb").glob("offline-run-*"))
        assert len(runs) == 1
    ids = {next((sweep / job / "wandb").glob("offline-run-*")).name[-8:] for job in ("0", "1")}
    assert len(ids) == 2


def test_resume_a_run_in_place(tmp_path: Path) -> None:
    import torch

    common = ["train.batch_size=16", "metrics.every_n_iterations=0", "metrics.num_samples=100",
              "trainer.deterministic=true"]
    full, part = tmp_path / "full", tmp_path / "part"
    assert run("ganlab-train", "train.iterations=12", *common, f"hydra.run.dir={full}",
               cwd=tmp_path).returncode == 0
    assert run("ganlab-train", "train.iterations=6", *common, f"hydra.run.dir={part}",
               cwd=tmp_path).returncode == 0
    first_wandb = {p.name[-8:] for p in (part / "wandb").glob("offline-run-*")}
    resumed = run("ganlab-train", f"resume={part}", "train.iterations=12", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((part / "metrics.json").read_text())["iterations"] == 12
    # The same W&B run id continues; no new output directory was made.
    assert {p.name[-8:] for p in (part / "wandb").glob("offline-run-*")} == first_wandb
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "part"]
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(part / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_skips_an_unreadable_last_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run("ganlab-train", "train.iterations=6", "train.batch_size=16", "logger=none",
               "metrics.every_n_iterations=0", "callbacks.checkpoint.every_n_iterations=2",
               "callbacks.checkpoint.keep_every_n_iterations=2", f"hydra.run.dir={out}",
               cwd=tmp_path).returncode == 0
    (out / "checkpoints" / "last.ckpt").write_bytes(b"truncated")
    resumed = run("ganlab-train", f"resume={out}", "train.iterations=8", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "ganlab: warning: cannot read checkpoint" in resumed.stderr
    # Lightning's line, printed once, by Hydra's logging (stdout and the run's train.log)
    restoring = [line for line in (resumed.stdout + resumed.stderr).splitlines()
                 if "Restoring states from the checkpoint path at" in line]
    assert len(restoring) == 1 and "iter_6.ckpt" in restoring[0]
    assert json.loads((out / "metrics.json").read_text())["iterations"] == 8


def test_a_nested_group_override_is_left_as_written() -> None:
    """model/prior is chosen by conf/model/aae.yaml's defaults list: no ``+`` is added (which
    Hydra would refuse as a second value), while a top-level unlisted group still gets one."""
    from ganlab.app.cli import normalize_group_overrides

    assert normalize_group_overrides("train", ["model/prior=mixture"]) == ["model/prior=mixture"]
    assert normalize_group_overrides("train", ["hparams_search=toy_grid_optuna"]) == [
        "+hparams_search=toy_grid_optuna"]
