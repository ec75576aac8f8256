"""Every trick of conf/tricks has its test through the real training step here."""

from __future__ import annotations

from pathlib import Path

from ganlab.app.cli import config_dir


def test_every_trick_has_a_test_file() -> None:
    tricks = sorted(p.stem for p in (Path(config_dir()) / "tricks").glob("*.yaml"))
    here = Path(__file__).parent
    tested = sorted(p.stem.removeprefix("test_") for p in here.glob("test_*.py"))
    assert len(tricks) >= 14
    assert sorted(set(tested) - {"all_tricks", "composed"}) == tricks
