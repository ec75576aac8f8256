"""benchmarks/stacked_mnist_table.py: a tiny real row (the per-channel classifier of the
``classifiers`` fixture), resume, the best-tuned-trick row and the table built by hand."""

from __future__ import annotations

import json

import pytest


def test_a_real_tiny_row_and_resume(bench, tmp_path, classifiers) -> None:
    s = bench("stacked_mnist_table")
    argv = ["--iterations", "2", "--num-samples", "64", "--seeds", "0", "--only", "plain",
            "--results", str(tmp_path), "--tuned", str(tmp_path / "none.json")]
    s.main(argv)
    raw = tmp_path / "stacked_mnist_table.json"
    runs = s.tr.load(raw)
    assert len(runs) == 1
    r = runs[0]
    assert (r["row"], r["seed"], r["iterations"], r["num_samples"]) == ("plain DCGAN", 0, 2, 64)
    assert 1 <= r["modes_covered"] <= 64 and 0 <= r["reverse_kl"] <= 6.908
    assert r["overrides"][:4] == ["experiment=dcgan_stacked_mnist_offline",
                                  "data=stacked_mnist_offline", "train.iterations=2",
                                  "metrics.num_samples=64"]
    s.main(argv)  # recorded: not run again
    assert s.tr.load(raw) == runs
    md = (tmp_path / "stacked_mnist_table.md").read_text()
    assert "| plain DCGAN | stacked_mnist_offline | 2 | 64 | 0 |" in md
    assert "| best tuned trick | stacked_mnist_offline | | | | not run (no tuned toy table yet)" \
        in md


def stacked(row, seed, modes, kl, fid, overrides=()):
    return {"data": "stacked_mnist_offline", "row": row, "seed": seed, "modes_covered": modes,
            "reverse_kl": kl, "fid": fid, "iterations": 100, "num_samples": 26000,
            "overrides": list(overrides), "wall_s": 30.0, "machine": "m", "command": "c"}


def test_table_by_hand_with_the_best_tuned_trick(bench, tmp_path, monkeypatch) -> None:
    s = bench("stacked_mnist_table")
    tuned = bench("tuned_toy_table")
    params = {"tricks.ema.decay": 0.99, "tricks.ema.start_iteration": 0}
    search = [{"kind": "search", "dataset": "toy_grid", "trick": "ema", "trial": 0, "seed": sd,
               "params": params, "distributions": {}, "objective": 1.0, "iterations": 5000}
              for sd in (100, 101)]
    table = [{"kind": "table", "dataset": "toy_grid", "trick": "ema", "seed": 0,
              "params": params, "modes_covered": 24, "num_modes": 25, "reverse_kl": 0.1,
              "hq_fraction": 0.9, "iterations": 5000, "wall_s": 1.0, "machine": "m"}]
    (tmp_path / "tuned.json").write_text("".join(json.dumps(r) + "\n" for r in search + table))
    name = "best tuned trick (ema: decay=0.99, start_iteration=0)"
    assert tuned.best_trick(s.tr.load(tmp_path / "tuned.json"))[0] == "ema"
    runs = [stacked("plain DCGAN", 0, 900, 0.5, 10.0), stacked("plain DCGAN", 1, 700, 0.7, 20.0),
            stacked(name, 0, 990, 0.05, 5.0)]
    (tmp_path / "stacked_mnist_table.json").write_text(
        "".join(json.dumps(r) + "\n" for r in runs))
    calls = []
    monkeypatch.setattr(s, "_job", lambda *a: calls.append(a) or {})
    s.main(["--table-only", "--results", str(tmp_path), "--tuned", str(tmp_path / "tuned.json")])
    assert calls == []
    md = (tmp_path / "stacked_mnist_table.md").read_text()
    # modes (900, 700): 800 ± 1.4e2; KL (0.5, 0.7): 0.6 ± 0.14; FID (10, 20): 15 ± 7.1
    assert ("| plain DCGAN | stacked_mnist_offline | 100 | 26000 | 0,1 | 800 ± 1.4e+02 "
            "| 0.6 ± 0.14 | 15 ± 7.1 | 30 | m |") in md
    assert f"| {name} | stacked_mnist_offline | 100 | 26000 | 0 | 990 | 0.05 | 5 | 30 | m |" in md
    assert "| PacGAN4 (packing m=4) | stacked_mnist_offline | | | | not run | not run |" in md
    assert "| *PacGAN Table 2: PacDCGAN4* (published) | full MNIST | | 26000 | " \
        "| 1000.0 ± 0.0 | 0.07 ± 0.005 | | | |" in md
    assert s.rows(s.tr.load(tmp_path / "tuned.json"), 5000)[name] == [
        "tricks=[ema]", "tricks.ema.decay=0.99", "tricks.ema.start_iteration=0"]


def test_a_best_trick_that_excludes_batch_norm_gets_a_d_without_it(bench, tmp_path) -> None:
    """Gradient penalty refuses a batch-norm D: its row turns the DCGAN D's batch norm off
    and says so; a trick without that exclusion keeps the preset's D."""
    s = bench("stacked_mnist_table")
    assert "discriminator.batch_norm" in s.trick_excludes("gradient_penalty")
    assert "discriminator.batch_norm" not in s.trick_excludes("ema")
    params = {"tricks.gradient_penalty.weight": 0.01}
    runs = [{"kind": "search", "dataset": "toy_grid", "trick": "gradient_penalty", "trial": 0,
             "seed": sd, "params": params, "distributions": {}, "objective": 0.1,
             "iterations": 5000} for sd in (100, 101)]
    runs.append({"kind": "table", "dataset": "toy_grid", "trick": "gradient_penalty",
                 "seed": 0, "params": params, "modes_covered": 25, "num_modes": 25,
                 "reverse_kl": 0.05, "hq_fraction": 0.8, "iterations": 5000})
    name = ("best tuned trick (gradient_penalty: weight=0.01), D without batch norm")
    assert s.rows(runs, 5000)[name] == [
        "tricks=[gradient_penalty]", "tricks.gradient_penalty.weight=0.01",
        "discriminator.net.batch_norm=false"]


def test_which_runs_are_due(bench, tmp_path, monkeypatch) -> None:
    """Only rows asked for, only seeds not recorded with the same overrides."""
    s = bench("stacked_mnist_table")
    calls = []

    def job(data, row, overrides, seed, threads):
        calls.append((row, seed))
        return {**stacked(row, seed, 1, 6.9, 1.0, overrides), "command": None}

    monkeypatch.setattr(s, "_job", job)
    argv = ["--seeds", "0,1", "--only", "pacgan2,minibatch", "--iterations", "100",
            "--results", str(tmp_path), "--tuned", str(tmp_path / "none.json")]
    s.main(argv)
    assert calls == [("PacGAN2 (packing m=2)", 0), ("PacGAN2 (packing m=2)", 1),
                     ("minibatch discrimination (defaults)", 0),
                     ("minibatch discrimination (defaults)", 1)]
    s.main(["--seeds", "0,1,2", *argv[2:]])
    assert calls[4:] == [("PacGAN2 (packing m=2)", 2), ("minibatch discrimination (defaults)", 2)]
    with pytest.raises(SystemExit, match="unknown row 'dcgan'"):
        s.main(["--only", "dcgan", "--results", str(tmp_path)])
