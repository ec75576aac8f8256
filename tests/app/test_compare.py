"""ganlab-compare: mean ± std over seeds per variant, and the curves plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ganlab.app.compare import main


def fake_run(root: Path, job: int, overrides: list[str], final: dict, history: list[dict]) -> None:
    run = root / str(job)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (run / "metrics.json").write_text(json.dumps(final))
    (run / "metrics_history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))


def test_table_is_mean_and_sample_std_over_seeds(tmp_path: Path, capsys) -> None:
    job = 0
    for loss, covered in (("minimax", [10, 14]), ("hinge", [20, 20])):
        for seed, modes in enumerate(covered):
            fake_run(tmp_path, job, [f"loss={loss}", f"seed={seed}"],
                     {"iterations": 100, "modes_covered": modes, "hq_fraction": 0.5},
                     [{"iterations": 50, "modes_covered": modes - 1},
                      {"iterations": 100, "modes_covered": modes}])
            job += 1
    main([str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["variant", "runs", "hq_fraction", "modes_covered"]
    rows = {line.split()[0]: line for line in out[1:3]}
    # minimax: mean 12, sample std sqrt(((10-12)^2 + (14-12)^2) / 1) = 2.828...
    assert "12 ± 2.8" in rows["loss=minimax"]
    assert "20 ± 0" in rows["loss=hinge"]
    assert "0.5 ± 0" in rows["loss=hinge"]
    assert (tmp_path / "compare.png").is_file()


def test_no_runs_is_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path)])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("ganlab: error: no run with a metrics.json")
