"""benchmarks/toy_table.py: its table rebuilt from a results file (the runs: table_runs)."""

from __future__ import annotations

import json


def toy_run(row: str, seed: int, modes: int, hq: float, kl: float, dataset: str = "toy_ring",
            iterations: int = 5000) -> dict:
    return {"dataset": dataset, "row": row, "seed": seed, "modes_covered": modes, "num_modes": 8,
            "hq_fraction": hq, "reverse_kl": kl, "iterations": iterations, "wall_s": 10.0 + seed,
            "machine": "m", "command": "python benchmarks/toy_table.py --fake"}


def test_table_only_builds_the_rows_from_the_file(bench, tmp_path) -> None:
    toy = bench("toy_table")
    runs = [toy_run("plain", 0, 8, 0.9, 0.1), toy_run("plain", 1, 6, 0.7, 0.3),
            toy_run("plain", 2, 1, 0.1, 9.9, iterations=100)]  # shorter: left out
    (tmp_path / "toy_table.json").write_text("".join(json.dumps(r) + "\n" for r in runs))
    toy.main(["--table-only", "--results", str(tmp_path)])
    md = (tmp_path / "toy_table.md").read_text()
    # modes (8, 6): 7 ± 1.4; hq 90, 70: 80 ± 14; KL (0.1, 0.3): 0.2 ± 0.14; wall (10, 11): 10
    assert "| plain | 5000 | 0,1 | 7 ± 1.4 / 8 | 80 ± 14 | 0.2 ± 0.14 | 10 | m |" in md
    assert "| ema | | | not run | not run | not run | | |" in md
    assert "    python benchmarks/toy_table.py --fake" in md
    assert (tmp_path / "toy_table.png").is_file()
