"""Bad input to ``ganlab-train`` (in a subprocess, as a user runs it): a non-zero exit, one
``ganlab: error: ...`` line as the last line of stderr, and nothing already trained lost."""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganlab.app.cli import config_dir

BIN = Path(sys.executable).parent
QUICK = ["logger=none", "train.iterations=2", "train.batch_size=16", "metrics.num_samples=100",
         "metrics.every_n_iterations=0", "trainer.enable_progress_bar=false",
         "~callbacks.progress_bar"]


def options(group: str) -> str:
    return ", ".join(sorted(p.stem for p in (Path(config_dir()) / group).glob("*.yaml")))


def run(*args: str, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
                "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([str(BIN / "ganlab-train"), *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> str:
    assert result.returncode != 0, result.stdout[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("ganlab: error: "), result.stderr[-3000:]
    assert lines[-1].startswith(message), lines[-1]
    assert sum(line.startswith("ganlab: error") for line in lines) == 1
    assert "Traceback" not in result.stderr
    return lines[-1]


def snapshot(folder: Path) -> dict[str, str]:
    """Content hash of every file under ``folder`` except the appended log."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "train.log"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-iteration run (the thing that must not be lost)."""
    root = tmp_path_factory.mktemp("trained")
    result = run(*QUICK, "train.iterations=4", f"hydra.run.dir={root / 'run'}", cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "run"


CONFIG_ERRORS = [
    (["train.iterations=[1"], "ganlab: error: malformed override: "),
    (["loss=foo"], f"ganlab: error: unknown loss 'foo'; valid: {options('loss')}"),
    (["data=foo"], f"ganlab: error: unknown data 'foo'; valid: {options('data')}"),
    (["generator=foo"], f"ganlab: error: unknown generator 'foo'; valid: {options('generator')}"),
    (["discriminator=foo"],
     f"ganlab: error: unknown discriminator 'foo'; valid: {options('discriminator')}"),
    (["tricks=[ema,foo]"], f"ganlab: error: unknown tricks 'foo'; valid: {options('tricks')}"),
    (["experiment=nope"], "ganlab: error: unknown experiment 'nope'; valid: "),
    (["-m", "loss=minimax,bar"], "ganlab: error: unknown loss 'bar'"),
    (["train.iteratons=5"], "ganlab: error: unknown key 'train.iteratons' under 'train'; "
                            "valid keys: batch_size, compile, compile_mode, d_steps, "
                            "iterations, iterations_per_batch, log_every_n_iterations"),
    (["data=image_folder"], "ganlab: error: missing value for data.path"),
    (["optim.generator.lr=interval(1e-4,1e-3)"],
     "ganlab: error: Sweep parameters 'optim.generator.lr=interval(1e-4,1e-3)' requires "
     "--multirun"),
    (["hparams_search=nope"],
     f"ganlab: error: unknown hparams_search 'nope'; valid: {options('hparams_search')}"),
]

RUN_ERRORS = [
    (["train.batch_size=0"], "ganlab: error: train.batch_size must be a positive integer, got 0"),
    (["train.iterations=-1"], "ganlab: error: train.iterations must be a positive integer, got -1"),
    (["metrics.num_samples=0"],
     "ganlab: error: metrics.num_samples must be a positive integer, got 0"),
    (["metrics.every_n_iterations=-5"],
     "ganlab: error: metrics.every_n_iterations must be a non-negative integer, got -5"),
    (["seed=abc"], "ganlab: error: seed must be an integer, got 'abc'"),
    (["model=vae", "train.d_steps=2"], "ganlab: error: model=vae takes one minibatch per "
     "iteration: train.d_steps must be 1, got 2"),
    (["generator=dcgan"], "ganlab: error: dcgan needs square images"),
    (["experiment=dcgan_mnist_offline", "loss=wgan_gp"],
     "ganlab: error: regulariser 'gradient_penalty' cannot be used with discriminator 'dcgan' "
     "(discriminator.batch_norm)"),
    (["experiment=dcgan_mnist_offline", "tricks=[r1]"],
     "ganlab: error: trick 'r1' cannot be used with discriminator 'dcgan' "
     "(discriminator.batch_norm)"),
    (["ckpt_path=missing.ckpt"], "ganlab: error: checkpoint not found: "),
    (["resume=nowhere"], "ganlab: error: resume: "),
]


@pytest.mark.parametrize(("args", "message"), CONFIG_ERRORS + RUN_ERRORS,
                         ids=[" ".join(a) for a, _ in CONFIG_ERRORS + RUN_ERRORS])
def test_bad_override_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*QUICK, f"hydra.run.dir={tmp_path / 'out'}",
                 f"hydra.sweep.dir={tmp_path / 'multi'}", *args, cwd=tmp_path)
    assert_one_line_error(result, message)


def test_missing_data_says_where_it_looked(tmp_path: Path) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    result = run(*QUICK, "data=mnist", f"paths.data_dir={empty}",
                 f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    line = assert_one_line_error(result, f"ganlab: error: MNIST not found in {empty}")
    assert "data.download=true" in line


def test_a_network_that_does_not_fit_the_image_size(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (24, 24), (i * 40, 0, 0)).save(folder / f"{i}.png")
    result = run(*QUICK, "data=image_folder", f"data.path={folder.parent}",
                 "data.resolution=20", "generator=dcgan", "discriminator=dcgan",
                 f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    assert_one_line_error(result, "ganlab: error: dcgan needs square images of side 4·2^n or 7·2^n")


def test_unwritable_output_directory(tmp_path: Path) -> None:
    # A path below a regular file cannot be created, not even by root (chmod would not stop it).
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run(*QUICK, f"hydra.run.dir={blocker / 'run'}", cwd=tmp_path)
    assert_one_line_error(result, f"ganlab: error: cannot use {blocker / 'run'}: Not a directory")


def test_truncated_checkpoint_is_one_line_and_left_alone(tmp_path: Path, trained: Path) -> None:
    bad = tmp_path / "truncated.ckpt"
    data = (trained / "checkpoints" / "last.ckpt").read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    before = bad.read_bytes()
    result = run(*QUICK, f"ckpt_path={bad}", f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    assert_one_line_error(
        result, f"ganlab: error: cannot read checkpoint {bad}: truncated or not a PyTorch")
    assert bad.read_bytes() == before
    assert not (tmp_path / "out" / "checkpoints").exists()


def test_foreign_checkpoint(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3), "epoch": 1}, foreign)
    result = run(*QUICK, f"ckpt_path={foreign}", f"hydra.run.dir={tmp_path / 'out'}",
                 cwd=tmp_path)
    assert_one_line_error(result, f"ganlab: error: {foreign} is not a ganlab checkpoint")


def test_checkpoint_with_a_pickled_object_is_refused(tmp_path: Path, trained: Path) -> None:
    checkpoint = torch.load(trained / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["ganlab"]["payload"] = argparse.Namespace(run="code")  # needs full unpickling
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save(checkpoint, unsafe)
    before = unsafe.read_bytes()
    result = run(*QUICK, "train.iterations=6", f"ckpt_path={unsafe}",
                 f"hydra.run.dir={tmp_path / 'out'}", cwd=tmp_path)
    assert_one_line_error(result, f"ganlab: error: cannot read checkpoint {unsafe}: it holds "
                                  "pickled Python objects")
    assert not (tmp_path / "out" / "checkpoints").exists()
    assert unsafe.read_bytes() == before  # the refused file is left as it was


@pytest.mark.parametrize("args", [["loss=foo"], ["train.batch_size=0"], ["metrics.num_samples=0"]],
                         ids=["unknown name", "zero batch", "zero samples"])
def test_a_bad_resume_leaves_the_run_as_it_was(tmp_path: Path, trained: Path,
                                               args: list[str]) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    before = snapshot(run_dir)
    result = run(f"resume={run_dir}", "train.iterations=8", *args, cwd=tmp_path)
    assert_one_line_error(result, "ganlab: error: ")
    assert snapshot(run_dir) == before
    # ...and the run still resumes with its own settings.
    good = run(f"resume={run_dir}", "train.iterations=6", cwd=tmp_path)
    assert good.returncode == 0, good.stderr[-2000:]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt",
                      weights_only=True)["ganlab"]["iteration"] == 6


def test_resume_with_no_readable_checkpoint_keeps_the_files(tmp_path: Path,
                                                            trained: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"truncated")
    before = snapshot(run_dir)
    result = run(f"resume={run_dir}", cwd=tmp_path)
    line = assert_one_line_error(result, "ganlab: error: no readable checkpoint in ")
    assert str(run_dir / "checkpoints") in line
    assert snapshot(run_dir) == before


def test_wandb_that_cannot_start_online_continues_offline(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {"WANDB_MODE": "online", "WANDB_BASE_URL": "http://127.0.0.1:9",  # nothing listens
           "WANDB_API_KEY": "x" * 40, "WANDB_DIR": str(tmp_path)}
    result = run("train.iterations=2", "train.batch_size=16", "metrics.num_samples=100",
                 "metrics.every_n_iterations=0", "logger.wandb.init_timeout=3",
                 f"hydra.run.dir={out}", cwd=tmp_path, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stderr.splitlines()
                if line.startswith("ganlab: warning: W&B could not start online")]
    assert len(warnings) == 1, result.stderr[-3000:]
    assert warnings[0].endswith("logging offline instead (upload later with `wandb sync`)")
    runs = list((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    assert "W&B run (offline)" in result.stdout
    assert (out / "metrics.json").is_file()
