"""benchmarks/table_runs.py: the results file, the cells and the runner the tables share."""

from __future__ import annotations

import math


def test_mean_std_cells(bench) -> None:
    t = bench("table_runs")
    assert t.mean_std([1.0, 2.0, 3.0]) == "2 ± 1"  # mean 2, sample std sqrt(2/2) = 1
    assert t.mean_std([5.0]) == "5"
    # sample std of (1, 3): sqrt(((1-2)² + (3-2)²) / 1) = 1.414... -> 2 digits
    assert t.mean_std([math.inf, 1.0, 3.0]) == "∞ in 1 of 3 seeds; the others 2 ± 1.4"
    assert t.mean_std([math.inf, math.inf]) == "∞ in 2 of 2 seeds"


def test_append_and_load_round_trip(bench, tmp_path) -> None:
    t = bench("table_runs")
    path = tmp_path / "sub" / "runs.json"
    assert t.load(path) == []
    t.append(path, {"seed": 0, "kl": 0.5})
    t.append(path, {"seed": 1, "kl": math.inf})
    assert t.load(path) == [{"seed": 0, "kl": 0.5}, {"seed": 1, "kl": math.inf}]
    assert path.read_text() == '{"seed": 0, "kl": 0.5}\n{"seed": 1, "kl": Infinity}\n'


def test_latest_keeps_the_longest_runs_one_per_seed(bench) -> None:
    t = bench("table_runs")
    runs = [{"row": "a", "seed": 1, "iterations": 10, "v": 1},
            {"row": "a", "seed": 0, "iterations": 20, "v": 2},
            {"row": "a", "seed": 0, "iterations": 10, "v": 3},
            {"row": "a", "seed": 0, "iterations": 20, "v": 4},  # a rerun: the later one
            {"row": "b", "seed": 2, "iterations": 30, "v": 5}]
    assert [r["v"] for r in t.latest(runs, lambda r: r["row"] == "a")] == [4]
    assert t.latest(runs, lambda r: r["row"] == "c") == []


def test_run_all_in_this_process_in_order(bench) -> None:
    t = bench("table_runs")
    got = []
    t.run_all([(1, 2), (3, 4)], lambda a, b: {"sum": a + b}, 1, got.append)
    assert got == [{"sum": 3}, {"sum": 7}]


def test_command_line(bench) -> None:
    t = bench("table_runs")
    assert t.command_line("x.py", ["--a", "1"], ["--b"]) == "python benchmarks/x.py --a 1"
    assert t.command_line("x.py", None, ["--b"]) == "python benchmarks/x.py --b"
