"""Logging: W&B offline without credentials, what a run logs, and the CSV logger."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganlab.adapter.loggers import resolve_wandb_mode
from ganlab.app.train import train


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "NETRC"):
        monkeypatch.delenv(var, raising=False)
    return home


def test_wandb_is_offline_without_credentials(no_credentials: Path) -> None:
    assert resolve_wandb_mode("auto") == "offline"


def test_wandb_is_online_with_a_key_or_netrc(no_credentials: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_wandb_mode("auto") == "online"
    monkeypatch.delenv("WANDB_API_KEY")
    netrc = no_credentials / ".netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password " + "y" * 40 + "\n")
    netrc.chmod(0o600)
    assert resolve_wandb_mode("auto") == "online"


def test_explicit_modes_win(no_credentials: Path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_wandb_mode("auto") == "disabled"
    assert resolve_wandb_mode("offline") == "offline"


def test_wandb_run_has_config_tags_scalars_and_pictures(make_cfg, tmp_path, no_credentials):
    import wandb

    cfg = make_cfg("logger=wandb", "train.iterations=20", "metrics.every_n_iterations=10",
                   "loss=hinge")
    try:
        train(cfg)
        run = wandb.run
        assert run is not None and run.offline
        assert run.group == "default"
        # Data, the family's (loss and networks), then each command-line override.
        assert list(run.tags[:4]) == ["data=toy_grid", "loss=hinge", "generator=mlp",
                                      "discriminator=mlp"]
        assert "train.iterations=20" in run.tags
        assert "metrics.every_n_iterations=10" in run.tags
        assert len(run.tags) == len(set(run.tags))
        assert run.config["train"]["iterations"] == 20
        assert run.config["loss"]["_target_"] == "ganlab.losses.Hinge"
        summary = dict(run.summary)
        for key in ("train/d_loss", "train/g_loss", "train/D_x", "train/D_G_z",
                    "val/modes_covered", "val/hq_fraction", "val/reverse_kl"):
            assert key in summary, key
        assert summary["iteration"] == 20
        run_dir = Path(run.dir).parent
    finally:
        wandb.finish()
    assert run_dir.name.startswith("offline-run-")
    assert run_dir.parent == tmp_path / "run" / "wandb"
    images = sorted((run_dir / "files" / "media" / "images").rglob("*.png"))
    assert len(images) == 2
    pixels = np.asarray(Image.open(images[-1]).convert("L"))
    assert pixels.min() < 50 and pixels.max() > 200  # not the all-black float-image bug


def test_csv_logger_steps_are_iterations(make_cfg, tmp_path) -> None:
    cfg = make_cfg("logger=csv", "train.iterations=20", "train.log_every_n_iterations=5",
                   "metrics.every_n_iterations=0")
    train(cfg)
    rows = list(csv.DictReader(open(tmp_path / "run" / "csv" / "metrics.csv")))
    steps = [int(r["step"]) for r in rows if r.get("train/d_loss")]
    assert steps == [5, 10, 15, 20]
    assert (tmp_path / "run" / "csv" / "hparams.yaml").is_file()


def test_resumed_run_continues_the_same_wandb_run(make_cfg, tmp_path, no_credentials) -> None:
    import wandb

    first, second = tmp_path / "first", tmp_path / "second"
    common = ["logger=wandb", "metrics.every_n_iterations=0"]
    try:
        train(make_cfg("train.iterations=10", *common, out=first))
        run_id = wandb.run.id
    finally:
        wandb.finish()
    ckpt = first / "checkpoints" / "last.ckpt"
    try:
        train(make_cfg("train.iterations=20", *common, f"ckpt_path={ckpt}", out=second))
        assert wandb.run.id == run_id
        assert dict(wandb.run.summary)["iteration"] == 20
    finally:
        wandb.finish()
