"""README's "Adding a trick" walk-through shows the files of the repository, verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ["src/ganlab/tricks/r2.py", "conf/tricks/r2.yaml", "tests/tricks/test_r2.py"]


def walkthrough_blocks() -> dict[str, str]:
    """``path -> code block`` of README's "Adding a trick" section (a block follows the line
    that names its file)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Adding a trick"):]
    section = section[: section.index("\n### ", 1)]
    blocks = re.findall(r"`([^`]+)`:\n\n```[a-z]*\n(.*?)\n```", section, flags=re.S)
    return dict(blocks)


@pytest.mark.parametrize("path", FILES)
def test_the_walkthrough_shows_the_file(path: str) -> None:
    assert walkthrough_blocks()[path] == (ROOT / path).read_text().rstrip("\n")


def test_the_walkthrough_touches_three_files() -> None:
    assert sorted(walkthrough_blocks()) == sorted(FILES)
