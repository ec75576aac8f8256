"""The layer contract and the absence of import cycles (README "Layout").

import-linter's ``layers`` contract (pyproject.toml) keeps every module to the layers below it;
the cycle check covers what a layers contract cannot see, cycles inside one layer. Both count
imports inside functions and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def import_cycles(package: str) -> list[tuple[str, ...]]:
    """Every direct import ``a -> b`` of ``package`` for which ``b`` imports ``a`` back,
    directly or not, as the chain ``a, b, ..., a``."""
    graph = grimp.build_graph(package, include_external_packages=False)
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycles.append((importer, *back))
    return cycles


def test_no_module_of_ganlab_is_in_an_import_cycle() -> None:
    assert import_cycles("ganlab") == []


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "cyclic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from cyclic import b\n")
    (pkg / "b.py").write_text(textwrap.dedent("""
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from cyclic import c
        """))
    (pkg / "c.py").write_text("def f():\n    from cyclic import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cycles = import_cycles("cyclic")
    assert ("cyclic.a", "cyclic.b", "cyclic.c", "cyclic.a") in cycles
    assert len(cycles) == 3  # one per edge of the cycle


def lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports --config <config>`` of this environment."""
    return subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--config",
                           str(config)], capture_output=True, text=True, cwd=ROOT)


def test_the_layer_contract_is_kept() -> None:
    out = lint_imports(ROOT / "pyproject.toml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ganlab layers KEPT" in out.stdout


def test_the_layer_contract_breaks_when_the_layers_are_upside_down(tmp_path: Path) -> None:
    text = (ROOT / "pyproject.toml").read_text()
    start = text.index("layers = [")
    end = text.index("]", start)
    layers = [line for line in text[start:end].splitlines()[1:] if line.strip()]
    upside_down = text[:start] + "layers = [\n" + "\n".join(reversed(layers)) + "\n" + text[end:]
    (tmp_path / "pyproject.toml").write_text(upside_down)
    out = lint_imports(tmp_path / "pyproject.toml")
    assert out.returncode == 1
    assert "ganlab layers BROKEN" in out.stdout
