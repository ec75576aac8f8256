"""benchmarks/tuned_toy_table.py: the searches' spaces, objective and resume, a tiny real run,
and the table built by hand from a fake results file."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from ganlab.app.cli import config_dir


def fake_run(calls: list):
    """A stand-in for table_runs.run_one: metrics from the overrides' r1 gamma (fast, exact)."""

    def run_one(overrides, seed, threads=1, keys=None):
        calls.append((tuple(overrides), seed))
        gamma = next((float(o.split("=")[1]) for o in overrides
                      if o.startswith("tricks.r1.gamma=")), 1.0)
        modes = 8 - min(int(abs(math.log10(gamma))), 8)  # 8 modes at gamma in [0.1, 10)
        return {"modes_covered": modes, "num_modes": 8, "hq_fraction": 0.5, "reverse_kl": 0.25,
                "iterations": int(next(o for o in overrides if o.startswith("train.it"))
                                  .split("=")[1]),
                "wall_s": 1.0, "cpu_s": 1.0, "threads": threads, "machine": "fake"}

    return run_one


def test_objective_is_missed_modes_then_kl(bench) -> None:
    t = bench("tuned_toy_table")
    assert t.objective({"num_modes": 8, "modes_covered": 6, "reverse_kl": 1.0}) == 2.5
    assert t.objective({"num_modes": 8, "modes_covered": 8, "reverse_kl": 0.25}) == 0.2
    assert t.objective({"num_modes": 25, "modes_covered": 0, "reverse_kl": math.inf}) == 26.0


def test_trick_overrides(bench) -> None:
    t = bench("tuned_toy_table")
    assert t.trick_overrides("ttur", {"tricks.ttur.g_lr": 2e-4, "d_over_g": 4}) == [
        "tricks=[ttur]", "tricks.ttur.g_lr=0.0002", "tricks.ttur.d_lr=0.0008"]
    fm = {"tricks.feature_matching.norm": "l1", "tricks.feature_matching.mode": "replace",
          "add_weight": 3.0}
    assert t.trick_overrides("feature_matching", fm) == [
        "tricks=[feature_matching]", "tricks.feature_matching.norm=l1",
        "tricks.feature_matching.mode=replace"]
    fm["tricks.feature_matching.mode"] = "add"
    assert t.trick_overrides("feature_matching", fm)[-1] == "tricks.feature_matching.weight=3.0"
    mbd = t.trick_overrides("minibatch_discrimination",
                            {"tricks.minibatch_discrimination.exclude_self": True})
    assert mbd[-1] == "tricks.minibatch_discrimination.exclude_self=true"


@pytest.mark.parametrize("end", [0, -1])
def test_every_space_composes_at_its_ends(bench, end: int) -> None:
    """Each trick's overrides at the first and the last value of each knob are a valid config
    (Hydra rejects a key the trick does not have)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    t = bench("tuned_toy_table")
    for trick, space in t.SPACES.items():
        params = {k: (spec[0][end] if kind == "choice" else spec[end])
                  for k, (kind, *spec) in space.items()}
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(config_name="train",
                          overrides=[*t.base_overrides("toy_grid", 20),
                                     *t.trick_overrides(trick, params)])
        assert trick in cfg.tricks, trick
        for key, value in params.items():
            if key.startswith(("tricks.", "optim.")):
                node = cfg
                for part in key.split("."):
                    node = node[part]
                assert node == value, key


def faked_r1_search(bench, monkeypatch, tmp_path, search_seeds: str, seeds: str
                    ) -> tuple[Any, list, list[str]]:
    """The script with ``run_one`` faked, its calls, and the arguments of an r1 search on
    toy_ring of 20 iterations writing to ``tmp_path``."""
    t = bench("tuned_toy_table")
    calls: list = []
    monkeypatch.setattr(t.tr, "run_one", fake_run(calls))
    return t, calls, ["--iterations", "20", "--search-seeds", search_seeds, "--seeds", seeds,
                      "--only", "r1", "--datasets", "toy_ring", "--results", str(tmp_path)]


def test_search_resumes_a_cut_trial_and_extends(bench, tmp_path, monkeypatch) -> None:
    t, calls, base = faked_r1_search(bench, monkeypatch, tmp_path, "100,101", "0,1")
    t.main(["--trials", "2", *base])
    raw = tmp_path / "tuned_toy_table.json"
    runs = t.tr.load(raw)
    assert [(r["kind"], r["trial"] if r["kind"] == "search" else None, r["seed"])
            for r in runs] == [("search", 0, 100), ("search", 0, 101), ("search", 1, 100),
                               ("search", 1, 101), ("table", None, 0), ("table", None, 1)]
    assert len(calls) == 6
    # Same command again: nothing runs.
    t.main(["--trials", "2", *base])
    assert len(calls) == 6 and len(t.tr.load(raw)) == 6
    # Cut trial 1 after its first seed (and drop the table runs): its second seed is run with
    # trial 1's parameters, then the table again.
    raw.write_text("".join(json.dumps(r) + "\n" for r in runs[:3]))
    t.main(["--trials", "2", *base])
    after = t.tr.load(raw)
    assert after[3]["trial"] == 1 and after[3]["seed"] == 101
    assert after[3]["params"] == runs[2]["params"]
    assert [r["kind"] for r in after] == ["search"] * 4 + ["table"] * 2
    # More trials extend the search by exactly one.
    t.main(["--trials", "3", *base])
    searches = [r for r in t.tr.load(raw) if r["kind"] == "search"]
    assert [(r["trial"], r["seed"]) for r in searches][4:] == [(2, 100), (2, 101)]


def test_a_resumed_search_draws_new_settings(bench, tmp_path, monkeypatch) -> None:
    """Resuming after one trial draws another setting, not the recorded first one again (a
    fresh sampler with the same seed would repeat it)."""
    t, _, base = faked_r1_search(bench, monkeypatch, tmp_path, "100", "0")
    t.main(["--trials", "1", *base])
    t.main(["--trials", "2", *base])
    first, second = (r["params"] for r in t.tr.load(tmp_path / "tuned_toy_table.json")
                     if r["kind"] == "search")
    assert first != second


def test_a_real_tiny_search_and_table(bench, tmp_path) -> None:
    t = bench("tuned_toy_table")
    t.main(["--iterations", "20", "--trials", "2", "--search-seeds", "100", "--seeds", "0",
            "--only", "gradient_penalty", "--datasets", "toy_ring", "--results", str(tmp_path),
            "--defaults", str(tmp_path / "none.json")])
    runs = t.tr.load(tmp_path / "tuned_toy_table.json")
    assert [r["kind"] for r in runs] == ["search", "search", "table"]
    assert all(r["iterations"] == 20 and r["num_modes"] == 8 for r in runs)
    best = min(runs[:2], key=lambda r: (r["objective"], r["trial"]))
    assert runs[2]["params"] == best["params"]
    md = (tmp_path / "tuned_toy_table.md").read_text()
    assert "| 2 × 1 × 20 |" in md


def toy(row, seed, modes, kl, hq=0.5):
    return {"dataset": "toy_ring", "row": row, "seed": seed, "modes_covered": modes,
            "num_modes": 8, "hq_fraction": hq, "reverse_kl": kl, "iterations": 20,
            "wall_s": 2.0, "machine": "m"}


def test_table_by_hand(bench, tmp_path) -> None:
    t = bench("tuned_toy_table")
    defaults = [toy("plain", 0, 6, 0.5), toy("plain", 1, 8, 0.3), toy("r1", 0, 2, 2.0),
                toy("r1", 1, 4, 1.0)]
    p_good, p_bad = {"tricks.r1.gamma": 1.0, "tricks.r1.every": 1}, \
        {"tricks.r1.gamma": 50.0, "tricks.r1.every": 4}
    search = [{**toy(None, s, m, kl), "kind": "search", "trick": "r1", "trial": n,
               "params": p, "distributions": {}, "objective": 8 - m + kl / (1 + kl)}
              for n, p, m, kl in [(0, p_bad, 3, 1.0), (1, p_good, 8, 0.25)] for s in (100, 101)]
    table = [{**toy(None, s, 8, kl), "kind": "table", "trick": "r1", "params": p_good}
             for s, kl in [(0, 0.1), (1, 0.3)]]
    (tmp_path / "defaults.json").write_text("".join(json.dumps(r) + "\n" for r in defaults))
    (tmp_path / "tuned_toy_table.json").write_text(
        "".join(json.dumps(r) + "\n" for r in search + table))
    t.main(["--table-only", "--iterations", "20", "--results", str(tmp_path),
            "--defaults", str(tmp_path / "defaults.json")])
    md = (tmp_path / "tuned_toy_table.md").read_text()
    # tuned: modes 8, KL (0.1, 0.3) -> 0.2 < plain's mean 0.4 and 8 >= 7 modes: helps.
    # trial 1: objective 0 + 0.25 / 1.25 = 0.2.
    assert ("| r1 | 3 ± 1.4 / 8 | 50 ± 0 | 1.5 ± 0.71 | 8 ± 0 / 8 | 50 ± 0 | 0.2 ± 0.14 | 0,1 "
            "| gamma=1, every=1 (objective 0.2) | 2 × 2 × 20 | helps | 2 | m |") in md
    assert "| plain (no trick) | 7 ± 1.4 / 8 | 50 ± 0 | 0.4 ± 0.14 |" in md
    assert "| ema | not run | not run | not run | not run |" in md
    assert "At their best, against the plain GAN: helps: r1; mixed: none; hurts: none" in md
    best = t.best_trick(t.tr.load(tmp_path / "tuned_toy_table.json"), "toy_ring", 20)
    assert best == ("r1", p_good, ["tricks=[r1]", "tricks.r1.gamma=1.0", "tricks.r1.every=1"])
    assert t.best_trick([], "toy_ring", 20) is None


def test_bad_arguments(bench, tmp_path) -> None:
    t = bench("tuned_toy_table")
    with pytest.raises(SystemExit, match="disjoint"):
        t.main(["--seeds", "0,100", "--results", str(tmp_path)])
    with pytest.raises(SystemExit, match="unknown trick 'nope'"):
        t.main(["--only", "nope", "--results", str(tmp_path)])


def test_a_failing_setting_is_the_worst_trial(bench, tmp_path, monkeypatch) -> None:
    t = bench("tuned_toy_table")

    def fail(overrides, seed, threads=1, keys=None):
        raise RuntimeError("diverged")

    monkeypatch.setattr(t.tr, "run_one", fail)
    out = t.search("toy_grid", "r1", 1, [100], 20, 1, str(tmp_path / "r.json"), "c")
    r = t.tr.load(tmp_path / "r.json")[0]
    assert (r["error"], r["objective"], out["objective"]) == ("RuntimeError: diverged", 26.0, 26.0)


def test_a_stopped_run_is_not_a_failed_trial(bench, tmp_path, monkeypatch) -> None:
    t = bench("tuned_toy_table")
    from ganlab.core.errors import Interrupted

    def stopped(overrides, seed, threads=1, keys=None):
        raise Interrupted(15, 387, None)

    monkeypatch.setattr(t.tr, "run_one", stopped)
    with pytest.raises(Interrupted, match="signal 15"):
        t.search("toy_grid", "r1", 1, [100], 20, 1, str(tmp_path / "r.json"), "c")
    assert t.tr.load(tmp_path / "r.json") == []
