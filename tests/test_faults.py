"""The faults a long run meets, caused as a user or a cluster would cause them: SIGTERM and
SIGINT in the middle of an iteration, SLURM's requeue signal, a full disk (a real 1 MB tmpfs,
and a write that fails by injection), and a data-parallel rank that dies. Each ends with one
line that says what was saved and how to continue, and nothing trained is lost."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

BIN = Path(sys.executable).parent
TESTS = Path(__file__).resolve().parent
ITERATIONS = 120
COMMON = [f"train.iterations={ITERATIONS}", "train.batch_size=16", "logger=wandb",
          "metrics.every_n_iterations=0", "metrics.num_samples=100",
          "trainer.deterministic=true", "callbacks.checkpoint.every_n_iterations=50",
          "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]


def env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONPATH": path,
            "OMP_NUM_THREADS": "1", **extra}


def signal_at(iteration: int, name: str, record: Path) -> list[str]:
    """Overrides that add tests/fault_helpers.py's SignalAt callback."""
    return ["+callbacks.signal_at._target_=fault_helpers.SignalAt",
            f"+callbacks.signal_at.iteration={iteration}",
            f"+callbacks.signal_at.signal_name={name}", f"+callbacks.signal_at.record={record}"]


def train(cwd: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ganlab-train"), *args], cwd=cwd, env=env(**extra),
                          capture_output=True, text=True, timeout=300)


def state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a["ganlab"]["iteration"] == b["ganlab"]["iteration"] == ITERATIONS
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for opt_a, opt_b in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for (_, sa), (_, sb) in zip(sorted(opt_a["state"].items()),
                                    sorted(opt_b["state"].items()), strict=True):
            for name in sa:
                assert torch.equal(torch.as_tensor(sa[name]), torch.as_tensor(sb[name])), name


def temporaries(run: Path) -> list[Path]:
    return sorted(run.rglob(".*.tmp"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same run, never interrupted (its SignalAt never fires)."""
    root = tmp_path_factory.mktemp("full")
    done = train(root, *COMMON, *signal_at(-1, "SIGTERM", root / "record"),
                 f"hydra.run.dir={root / 'run'}")
    assert done.returncode == 0, done.stderr[-2000:]
    return state(root / "run")


def test_sigterm_mid_iteration_saves_it_and_resume_is_bit_exact(
    tmp_path: Path, uninterrupted: dict
) -> None:
    run, record = tmp_path / "run", tmp_path / "record"
    # SIGTERM arrives after D's update of iteration 58, before G's: the run finishes that
    # iteration, saves it (the periodic checkpoint holds 50) and stops.
    stopped = train(tmp_path, *COMMON, *signal_at(57, "SIGTERM", record), f"hydra.run.dir={run}")
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    ckpt = run / "checkpoints" / "last.ckpt"
    assert stopped.stderr.splitlines()[-1] == (
        f"ganlab: stopped by SIGTERM at iteration 58; saved {ckpt} (iteration 58); "
        f"continue with: ganlab-train resume={run}")
    assert "Traceback" not in stopped.stderr
    assert state(run)["ganlab"]["iteration"] == 58
    assert "stopped by SIGTERM at iteration 58" in (run / "train.log").read_text()
    assert temporaries(run) == []
    resumed = train(tmp_path, f"resume={run}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # The control: the resumed process ran iterations 58..119 only, so the equality below is
    # the checkpoint's doing (a restart from scratch would have run all 120).
    assert record.read_text().splitlines() == ["0 58", f"58 {ITERATIONS - 58}"]
    assert_same_training_state(state(run), uninterrupted)


def test_ctrl_c_mid_iteration_saves_it_and_exits_130(tmp_path: Path) -> None:
    run = tmp_path / "run"
    stopped = train(tmp_path, *COMMON, *signal_at(20, "SIGINT", tmp_path / "record"),
                    f"hydra.run.dir={run}")
    assert stopped.returncode == 128 + signal.SIGINT, stopped.stderr[-2000:]
    assert stopped.stderr.splitlines()[-1] == (
        f"ganlab: stopped by SIGINT at iteration 21; saved {run}/checkpoints/last.ckpt "
        f"(iteration 21); continue with: ganlab-train resume={run}")
    assert "KeyboardInterrupt" not in stopped.stderr + stopped.stdout
    assert state(run)["ganlab"]["iteration"] == 21


def test_slurm_requeue_signal_saves_requeues_and_the_job_continues_in_place(
    tmp_path: Path, uninterrupted: dict
) -> None:
    stub, calls = tmp_path / "bin", tmp_path / "scontrol_calls"
    stub.mkdir()
    (stub / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (stub / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "ganlab",
             "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
             "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"}
    run, record = tmp_path / "run", tmp_path / "record"
    # The same command both times, as SLURM re-runs a requeued job's script.
    command = [*COMMON, *signal_at(30, "SIGUSR2", record), f"hydra.run.dir={run}"]
    first = train(tmp_path, *command, **slurm)
    assert first.returncode == 128 + signal.SIGUSR2, first.stderr[-2000:]
    assert calls.read_text() == "requeue 4242\n"
    ckpt = run / "checkpoints" / "last.ckpt"
    assert first.stderr.splitlines()[-1] == (
        f"ganlab: SIGUSR2 at iteration 31: saved {ckpt} and requeued the SLURM job, which "
        f"continues in {run} (by hand: ganlab-train resume={run})")
    assert state(run)["ganlab"]["iteration"] == 31
    run_id = (run / "checkpoints" / "wandb_id.txt").read_text().strip()
    second = train(tmp_path, *command, **slurm, SLURM_RESTART_COUNT="1")
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"ganlab: requeued SLURM job (restart 1): continuing from {ckpt}" in second.stdout
    assert record.read_text().splitlines() == ["0 31", f"31 {ITERATIONS - 31}"]
    assert (run / "checkpoints" / "wandb_id.txt").read_text().strip() == run_id
    # Two offline pieces of one W&B run: `wandb sync` joins them under the same id.
    pieces = sorted(p.name for p in (run / "wandb").glob("offline-run-*"))
    assert len(pieces) == 2 and all(p.endswith(f"-{run_id}") for p in pieces), pieces
    assert_same_training_state(state(run), uninterrupted)
    assert calls.read_text() == "requeue 4242\n"  # the finished job did not requeue again


def _mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` at ``where``; the reason when that is not permitted."""
    where.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(where)], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        return f"mount: {exc}"
    return None if done.returncode == 0 else f"mount -t tmpfs: {done.stderr.strip()}"


def test_full_disk_one_line_last_checkpoint_kept_and_resumes_after_space_is_freed(
    tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    why = _mount_tmpfs(disk, "1m")
    if why:
        pytest.skip(f"cannot make a small file system here ({why})")
    try:
        run = disk / "run"
        args = ["train.iterations=400", "train.batch_size=16", "logger=none",
                "metrics.every_n_iterations=0", "metrics.num_samples=100",
                "callbacks.checkpoint.every_n_iterations=100", f"hydra.run.dir={run}"]
        # stderr and stdout (the progress bar) together, as a terminal shows them.
        full = subprocess.run([str(BIN / "ganlab-train"), *args], cwd=tmp_path, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=300)
        assert full.returncode == 2, full.stdout[-2000:]
        ckpt = run / "checkpoints" / "last.ckpt"
        line = (f"ganlab: error: cannot write {ckpt}: No space left on device; the last good "
                f"checkpoint is {ckpt} (iteration 100); continue with: "
                f"ganlab-train resume={run}")
        # On a line of its own, after the progress bar's, and the only error line.
        assert [x for x in full.stdout.splitlines() if "ganlab: error" in x] == [line]
        assert "iterations:" in full.stdout and "Traceback" not in full.stdout
        assert line in (run / "train.log").read_text()
        assert temporaries(run) == []
        assert state(run)["ganlab"]["iteration"] == 100
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True, timeout=30)
        resumed = train(tmp_path, f"resume={run}")
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert state(run)["ganlab"]["iteration"] == 400
    finally:
        subprocess.run(["umount", str(disk)], timeout=30)


#: ganlab-train with PIL's image writer failing as on a full disk, after writing a few bytes.
FAILING_FIGURES = """
import errno, os, sys
from pathlib import Path
import PIL.Image

def save(self, fp, format=None, **kwargs):
    Path(fp).write_bytes(b"partial")
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

PIL.Image.Image.save = save
from ganlab.app.train import main
sys.argv[0] = "ganlab-train"
main()
"""


def test_a_failed_figure_write_names_the_figure_and_the_last_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    failed = subprocess.run(
        [sys.executable, "-c", FAILING_FIGURES, "train.iterations=40", "train.batch_size=16",
         "logger=none", "metrics.every_n_iterations=20", "metrics.num_samples=100",
         "callbacks.checkpoint.every_n_iterations=10", f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2, failed.stderr[-2000:]
    errors = [x for x in failed.stderr.splitlines() if x.startswith("ganlab: error")]
    ckpt = run / "checkpoints" / "last.ckpt"
    pattern = (rf"ganlab: error: cannot write {re.escape(str(run))}/samples/\w+_0000020\.png: "
               rf"No space left on device; the last good checkpoint is {re.escape(str(ckpt))} "
               rf"\(iteration 20\); continue with: ganlab-train resume={re.escape(str(run))}")
    assert len(errors) == 1 and re.fullmatch(pattern, errors[0]), errors
    assert "Traceback" not in failed.stderr
    assert temporaries(run) == [] and list((run / "samples").glob("*.png")) == []
    assert state(run)["ganlab"]["iteration"] == 20


def test_a_dying_rank_stops_the_survivor_with_one_line(tmp_path: Path) -> None:
    run, timeout = tmp_path / "run", 60
    proc = subprocess.Popen(
        [str(BIN / "ganlab-train"), "trainer=ddp", "trainer.accelerator=cpu",
         "trainer.devices=2", f"trainer.strategy.timeout.seconds={timeout}",
         "train.iterations=100000", "train.batch_size=16", "logger=none",
         "metrics.every_n_iterations=0", "metrics.num_samples=100",
         "callbacks.checkpoint.every_n_iterations=20", "trainer.enable_progress_bar=false",
         "~callbacks.progress_bar", f"hydra.run.dir={run}"],
        cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpt = run / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not ckpt.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 1, "rank 1 was not found"
    os.kill(int(children[0]), signal.SIGKILL)
    killed = time.monotonic()
    _, stderr = proc.communicate(timeout=timeout + 60)
    assert time.monotonic() - killed < timeout
    assert proc.returncode == 2, stderr[-2000:]
    errors = [x for x in stderr.splitlines() if x.startswith("ganlab: error")]
    assert len(errors) == 1, errors
    match = re.fullmatch(
        rf"ganlab: error: a data-parallel process was lost \(.+\); this process stopped; "
        rf"the last good checkpoint is {re.escape(str(ckpt))} \(iteration (\d+)\); "
        rf"continue with: ganlab-train resume={re.escape(str(run))}", errors[0])
    assert match, errors[0]
    assert int(match.group(1)) == state(run)["ganlab"]["iteration"] > 0
    assert "Traceback" not in stderr
