"""The notebooks in notebooks/ run end to end with tiny settings and are committed clean.

Each notebook is executed by nbclient in a fresh kernel with ``GANLAB_NOTEBOOK_FAST=1``
(its first, "parameters" cell then picks a few iterations; runs go to temporary folders).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["figure1", "explore_checkpoint", "compare_runs"]
#: Seconds a cell may take (whole notebooks: 29-52 s wall, 8-15 s CPU, on 2 busy cores).
TIMEOUT = 180


def load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def test_the_notebooks_are_there() -> None:
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name: str) -> None:
    nb = load(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, name
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    # The first code cell holds the settings (papermill's "parameters" tag).
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "GANLAB_NOTEBOOK_FAST" in code[0].source


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANLAB_NOTEBOOK_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for var in ("GANLAB_CKPT", "GANLAB_MULTIRUN_DIR", "GANLAB_WANDB_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' temporary run folders
    nb = load(name)
    client = nbclient.NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    assert elapsed < TIMEOUT
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream")
    expected = {
        "figure1": "final max |D - 1/2| = ",
        "explore_checkpoint": "evaluated again: ",
        "compare_runs": "lsgan",
    }[name]
    assert expected in text
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs
                 if "image/png" in o.get("data", {}))
    assert images >= {"figure1": 1, "explore_checkpoint": 3, "compare_runs": 2}[name]
