"""The toy table with every trick at its tuned setting: for each trick, an Optuna search (TPE)
of its main knob(s) on search seeds disjoint from the table's, then the chosen setting on the
table's seeds, beside the trick's config defaults (``toy_table.json``) and the plain GAN.

Protocol (as ``toy_table.py``): the plain GAN (non-saturating cost, MLP G and D 3x128, latent 2,
Adam 1e-3, batch 256) plus one trick, every run (search trials and table rows alike) trained for
the same ``--iterations``; 2,500 samples from the fixed evaluation seed; modes covered,
high-quality share (3σ) and reverse KL.

Objective of the search (minimised), the mean over the search seeds of

    (num_modes - modes_covered) + KL / (1 + KL)       (KL = ∞ counts 1)

i.e. modes covered first, reverse KL to break ties (the second term lies in [0, 1)).

    python benchmarks/tuned_toy_table.py [--trials 12] [--search-seeds 100,101]
        [--seeds 0,1,2,3,4] [--iterations 5000] [--only r1,ema] [--datasets toy_grid,toy_ring]
        [--jobs 2] [--threads 1] [--table-only]

Resumable: every run (each search seed of each trial, each table seed) is appended to
``benchmarks/results/tuned_toy_table.json`` as it finishes. A restarted search adds its recorded
trials to a fresh study (``study.add_trial``), finishes a trial cut off between seeds with the
same parameters, and asks for the rest; the table seeds already run with the chosen setting are
not run again. ``--trials`` larger than before extends a search. The table is rewritten from the
file (``tuned_toy_table.md``); ``--table-only`` runs nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import warnings
from pathlib import Path
from typing import Any

import table_runs as tr
import toy_table

from ganlab.core.errors import Interrupted

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = toy_table.DATASETS
#: Modes of each mixture (a failed trial's record).
NUM_MODES = {"toy_grid": 25, "toy_ring": 8}

#: The searched knobs of each trick: knob -> ("log", low, high) (log-uniform) | ("float", low,
#: high) (uniform) | ("choice", [values]). A knob that names a config key is set as
#: ``<key>=<value>``; the others are turned into overrides by :func:`trick_overrides`. The table
#: of the spaces is written into the markdown (:func:`space_table`), with ``NOTES``.
SPACES: dict[str, dict[str, tuple]] = {
    "label_smoothing": {"tricks.label_smoothing.alpha": ("float", 0.7, 1.0)},
    "instance_noise": {"tricks.instance_noise.sigma": ("log", 0.01, 1.0),
                       "tricks.instance_noise.schedule": ("choice", ["linear", "constant"])},
    "virtual_batch_norm": {"tricks.virtual_batch_norm.reference_size": ("choice", [16, 64, 256])},
    "minibatch_discrimination": {
        "tricks.minibatch_discrimination.num_kernels": ("choice", [5, 16, 50, 100]),
        "tricks.minibatch_discrimination.kernel_dim": ("choice", [3, 5, 10]),
        "tricks.minibatch_discrimination.init_std": ("log", 0.01, 1.0),
        "tricks.minibatch_discrimination.exclude_self": ("choice", [False, True]),
    },
    "feature_matching": {"tricks.feature_matching.norm": ("choice", ["l1", "l2"]),
                         "tricks.feature_matching.mode": ("choice", ["replace", "add"]),
                         "add_weight": ("log", 0.1, 10.0)},
    "historical_averaging": {"tricks.historical_averaging.weight": ("log", 1e-5, 1.0)},
    "ttur": {"tricks.ttur.g_lr": ("log", 1e-4, 3e-3), "d_over_g": ("choice", [1, 2, 4, 8])},
    "ema": {"tricks.ema.decay": ("choice", [0.9, 0.99, 0.995, 0.999, 0.9999]),
            "tricks.ema.start_iteration": ("choice", [0, 1000])},
    "spectral_norm": {"tricks.spectral_norm.n_power_iterations": ("choice", [1, 2, 5]),
                      "optim.discriminator.lr": ("log", 1e-4, 3e-3)},
    "r1": {"tricks.r1.gamma": ("log", 0.01, 100.0), "tricks.r1.every": ("choice", [1, 4, 16])},
    "gradient_penalty": {"tricks.gradient_penalty.weight": ("log", 0.01, 100.0)},
    "packing": {"tricks.packing.m": ("choice", [2, 4])},
}

#: Why each space is what it is.
NOTES: dict[str, str] = {
    "label_smoothing": "Salimans et al. used α = 0.9",
    "instance_noise": "linear: σ annealed to 0 at the end of the run; the modes are 0.05 wide",
    "minibatch_discrimination": "the paper: B = 100 kernels of C = 5 on larger networks",
    "feature_matching": "add_weight: the FM weight when mode=add; the trick has no layer "
                        "option (D's last hidden layer)",
    "historical_averaging": "the default weight 1 collapses",
    "ttur": "d_over_g: D's lr / G's lr (SAGAN: 4)",
    "spectral_norm": "the trick normalises D only (it has no G option); D's lr is searched "
                     "since SN shrinks D's steps",
    "r1": "every: lazy regularisation interval",
    "packing": "PacGAN; batch 256 is a multiple of both",
}

#: Overrides of a trick's rows besides its knobs (as in toy_table.py).
FIXED: dict[str, list[str]] = {
    "instance_noise": ["tricks.instance_noise.anneal_iterations=${train.iterations}"],
    "virtual_batch_norm": ["generator.net.batch_norm=true"],
}


def space_table() -> list[str]:
    """The search spaces as markdown rows."""
    lines = ["| trick | knob | space | note |", "|---|---|---|---|"]
    for trick, space in SPACES.items():
        for i, (key, (kind, *spec)) in enumerate(space.items()):
            text = f"{{{', '.join(map(str, spec[0]))}}}" if kind == "choice" else \
                f"{'log-uniform' if kind == 'log' else 'uniform'} [{spec[0]:g}, {spec[1]:g}]"
            lines.append(f"| {trick if i == 0 else ''} | {key} | {text} "
                         f"| {NOTES.get(trick, '') if i == 0 else ''} |")
    return lines


def trick_overrides(trick: str, params: dict[str, Any]) -> list[str]:
    """``tricks=[trick]``, its fixed overrides and its knobs at ``params``."""
    out = [f"tricks=[{trick}]", *FIXED.get(trick, [])]
    for key, value in params.items():
        if key == "add_weight":  # feature matching's weight applies to mode=add only
            if params.get("tricks.feature_matching.mode") == "add":
                out.append(f"tricks.feature_matching.weight={value}")
        elif key == "d_over_g":
            out.append(f"tricks.ttur.d_lr={params['tricks.ttur.g_lr'] * value}")
        else:
            out.append(f"{key}={json.dumps(value) if isinstance(value, bool) else value}")
    return out


def suggest(trial: Any, trick: str) -> dict[str, Any]:
    """The knobs of ``trick`` that Optuna's ``trial`` picks."""
    params = {}
    for key, (kind, *spec) in SPACES[trick].items():
        if kind == "log":
            params[key] = trial.suggest_float(key, spec[0], spec[1], log=True)
        elif kind == "float":
            params[key] = trial.suggest_float(key, spec[0], spec[1])
        else:
            params[key] = trial.suggest_categorical(key, spec[0])
    return params


def objective(run: dict[str, Any]) -> float:
    """Missed modes, then reverse KL: ``(num_modes - modes) + KL / (1 + KL)`` (∞ -> 1)."""
    kl = run["reverse_kl"]
    return (run["num_modes"] - run["modes_covered"]) + (1.0 if math.isinf(kl) else kl / (1 + kl))


def base_overrides(dataset: str, iterations: int) -> list[str]:
    return [*toy_table.PROTOCOL, f"data={dataset}", f"train.iterations={iterations}"]


def trials_of(runs: list[dict[str, Any]], dataset: str, trick: str, iterations: int
              ) -> dict[int, dict[str, Any]]:
    """The recorded trials of a search: number -> params, distributions, runs by seed."""
    trials: dict[int, dict[str, Any]] = {}
    for r in runs:
        if (r.get("kind") == "search" and r["dataset"] == dataset and r["trick"] == trick
                and r["iterations"] == iterations):
            t = trials.setdefault(r["trial"], {"params": r["params"],
                                               "distributions": r["distributions"], "runs": {}})
            t["runs"][r["seed"]] = r
    return trials


def search(dataset: str, trick: str, n_trials: int, search_seeds: list[int], iterations: int,
           threads: int, raw: str, command: str) -> dict[str, Any]:
    """Run (or finish) the search of ``trick`` on ``dataset`` up to ``n_trials`` trials, each on
    every search seed, appending each run to ``raw``; the best trial."""
    os.environ.setdefault("WANDB_MODE", "offline")
    import optuna
    from optuna.distributions import distribution_to_json, json_to_distribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    path = Path(raw)
    recorded = trials_of(tr.load(path), dataset, trick, iterations)
    # A resumed search seeds its sampler with the number of recorded trials: a fresh sampler
    # seeded 0 would draw the recorded first trial's setting again.
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(
        seed=len(recorded), n_startup_trials=4))

    def run_trial(number: int, params: dict[str, Any], dists: dict[str, str],
                  done: dict[int, dict[str, Any]]) -> float:
        for seed in search_seeds:
            if seed in done:
                continue
            overrides = [*base_overrides(dataset, iterations), *trick_overrides(trick, params)]
            try:
                result = tr.run_one(overrides, seed, threads)
            except Interrupted:  # the benchmark was stopped: nothing recorded, resumable
                raise
            except Exception as e:  # a setting that fails is the worst trial, not the end
                result = {"modes_covered": 0, "num_modes": NUM_MODES[dataset],
                          "hq_fraction": 0.0, "reverse_kl": math.inf, "iterations": iterations,
                          "error": f"{type(e).__name__}: {e}"}
            r = {"kind": "search", "dataset": dataset, "trick": trick, "trial": number,
                 "seed": seed, "params": params, "distributions": dists,
                 "overrides": overrides, **result, "command": command}
            r["objective"] = objective(r)
            tr.append(path, r)
            done[seed] = r
        return statistics.fmean(done[s]["objective"] for s in search_seeds)

    for number in sorted(recorded):
        t = recorded[number]
        value = run_trial(number, t["params"], t["distributions"], t["runs"])
        dists = {k: json_to_distribution(v) for k, v in t["distributions"].items()}
        study.add_trial(optuna.trial.create_trial(params=t["params"], distributions=dists,
                                                  value=value))
    while len(study.trials) < n_trials:
        trial = study.ask()
        params = suggest(trial, trick)
        dists = {k: distribution_to_json(d) for k, d in trial.distributions.items()}
        study.tell(trial, run_trial(len(study.trials) - 1, params, dists, {}))
    return {"dataset": dataset, "trick": trick, "trials": len(study.trials),
            "best": study.best_trial.params, "objective": study.best_value}


def chosen(runs: list[dict[str, Any]], dataset: str, trick: str, iterations: int,
           n_search_seeds: int) -> tuple[dict[str, Any], float, int] | None:
    """The best finished trial of a search (lowest objective; the earliest on ties): its
    params, objective and the number of finished trials; ``None`` before any."""
    finished = [t for t in trials_of(runs, dataset, trick, iterations).items()
                if len(t[1]["runs"]) >= n_search_seeds]
    if not finished:
        return None
    values = [(statistics.fmean(r["objective"] for r in t["runs"].values()), n, t["params"])
              for n, t in finished]
    value, _, params = min(values, key=lambda v: (v[0], v[1]))
    return params, value, len(finished)


def table_runs(runs: list[dict[str, Any]], dataset: str, trick: str, params: dict[str, Any]
               ) -> list[dict[str, Any]]:
    """The table runs of ``trick`` on ``dataset`` at ``params`` (longest length, by seed)."""
    return tr.latest(runs, lambda r: r.get("kind") == "table" and r["dataset"] == dataset
                  and r["trick"] == trick and r["params"] == params)


def _table_job(dataset: str, trick: str, params: dict[str, Any], seed: int, iterations: int,
               threads: int) -> dict[str, Any]:
    os.environ.setdefault("WANDB_MODE", "offline")
    overrides = [*base_overrides(dataset, iterations), *trick_overrides(trick, params)]
    result = tr.run_one(overrides, seed, threads)
    return {"kind": "table", "dataset": dataset, "trick": trick, "seed": seed, "params": params,
            "overrides": overrides, **result}


def default_runs(defaults: list[dict[str, Any]], dataset: str, row: str, iterations: int
                 ) -> list[dict[str, Any]]:
    """The toy table's runs of ``row`` (a trick at its defaults, or plain) of this length."""
    return tr.latest(defaults, lambda r: r["dataset"] == dataset and r["row"] == row
                  and r["iterations"] == iterations)


def cells(rs: list[dict[str, Any]]) -> tuple[str, str, str]:
    """Modes / high-quality % / reverse KL cells of the runs ``rs``."""
    return (f"{tr.mean_std([r['modes_covered'] for r in rs])} / {rs[0]['num_modes']}",
            tr.mean_std([100 * r["hq_fraction"] for r in rs]),
            tr.mean_std([r["reverse_kl"] for r in rs]))


def verdict(tuned: list[dict[str, Any]], plain: list[dict[str, Any]]) -> str:
    """Helps when the tuned row beats the plain GAN's mean modes and mean reverse KL (ties in
    modes count), hurts when it loses on both, mixed otherwise."""
    if not tuned or not plain:
        return ""
    modes = statistics.fmean(r["modes_covered"] for r in tuned) - \
        statistics.fmean(r["modes_covered"] for r in plain)
    kl = statistics.fmean(r["reverse_kl"] for r in tuned) - \
        statistics.fmean(r["reverse_kl"] for r in plain)
    if modes >= 0 and kl < 0:
        return "helps"
    if modes < 0 and kl > 0:
        return "hurts"
    return "mixed"


def show(params: dict[str, Any]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) and not
                     isinstance(v, bool) else f"{k.split('.')[-1]}={v}" for k, v in params.items())


def best_trick(runs: list[dict[str, Any]], dataset: str = "toy_grid", iterations: int = 5000,
               n_search_seeds: int = 2, exclude: tuple[str, ...] = ("packing",)
               ) -> tuple[str, dict[str, Any], list[str]] | None:
    """The trick whose tuned table row on ``dataset`` has the lowest mean objective (packing
    left out: the Stacked MNIST table has its own rows): name, params and its trick overrides;
    ``None`` when no tuned row was run."""
    best = None
    for trick in SPACES:
        pick = chosen(runs, dataset, trick, iterations, n_search_seeds)
        if trick in exclude or pick is None:
            continue
        rs = table_runs(runs, dataset, trick, pick[0])
        if not rs:
            continue
        value = statistics.fmean(objective(r) for r in rs)
        if best is None or value < best[0]:
            best = (value, trick, pick[0])
    if best is None:
        return None
    return best[1], best[2], trick_overrides(best[1], best[2])


def markdown(runs: list[dict[str, Any]], defaults: list[dict[str, Any]], iterations: int,
             n_search_seeds: int) -> str:
    """The tuned table (one section per dataset) as markdown."""
    commands = list(dict.fromkeys(r["command"] for r in runs if r.get("command")))
    lines = [
        "# Mode collapse on the toy mixtures: every trick at its tuned setting",
        "",
        "Produced by these commands (each appends its runs to `tuned_toy_table.json`; the table "
        "is rebuilt from that file, also by `python benchmarks/tuned_toy_table.py "
        "--table-only`):",
        "",
        *[f"    {c}" for c in commands],
        "",
        "Protocol: as `toy_table.md` (2,500 samples from the fixed evaluation seed, 3σ "
        "high-quality threshold, reverse KL of the high-quality samples' mode histogram), "
        f"every run {iterations} iterations. Per trick, a TPE search (Optuna, seed 0) of its "
        "knobs (`SPACES` in the script) on search seeds disjoint from the table's, objective "
        "the mean of (missed modes) + KL/(1+KL); the best trial's setting is then run on the "
        "table's seeds. Defaults: the trick at its config defaults, from `toy_table.json` "
        "(its runs of the same length only). "
        "Verdict: *helps* when the tuned row beats the plain GAN's mean modes (or ties) and "
        "its mean reverse KL, *hurts* when it loses on both, *mixed* otherwise. Budget: "
        "finished trials × search seeds × iterations. Wall time: seconds per table run, one "
        "CPU thread per run (column 'machine').",
        "",
        "Search spaces:",
        "",
        *space_table(),
        "",
    ]
    for dataset in DATASETS:
        plain_runs = default_runs(defaults, dataset, "plain", iterations)
        lines += [f"## {dataset}", "",
                  "| trick | defaults: modes | hq % | reverse KL | tuned: modes | hq % "
                  "| reverse KL | seeds | chosen | search budget | verdict | wall s | machine |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        if plain_runs:
            lines.append(f"| plain (no trick) | {' | '.join(cells(plain_runs))} | | | "
                         f"| {','.join(str(r['seed']) for r in plain_runs)} | | | | "
                         f"{statistics.fmean(r['wall_s'] for r in plain_runs):.0f} | "
                         f"{'; '.join(sorted({r['machine'] for r in plain_runs}))} |")
        verdicts: dict[str, list[str]] = {"helps": [], "mixed": [], "hurts": []}
        for trick in SPACES:
            d = default_runs(defaults, dataset, trick, iterations)
            default_cells = cells(d) if d else ("not run",) * 3
            pick = chosen(runs, dataset, trick, iterations, n_search_seeds)
            if pick is None:
                lines.append(f"| {trick} | {' | '.join(default_cells)} | not run | not run "
                             "| not run | | | | | | |")
                continue
            params, value, n = pick
            budget = f"{n} × {n_search_seeds} × {iterations}"
            rs = table_runs(runs, dataset, trick, params)
            tuned = cells(rs) if rs else ("not run",) * 3
            wall = f"{statistics.fmean(r['wall_s'] for r in rs):.0f}" if rs else ""
            machine = "; ".join(sorted({r["machine"] for r in rs}))
            seeds = ",".join(str(r["seed"]) for r in rs)
            says = verdict(rs, plain_runs)
            if says:
                verdicts[says].append(trick)
            lines.append(f"| {trick} | {' | '.join(default_cells)} | {' | '.join(tuned)} "
                         f"| {seeds} | {show(params)} (objective {value:.3g}) | {budget} "
                         f"| {says} | {wall} | {machine} |")
        lines += ["", "At their best, against the plain GAN: " + "; ".join(
            f"{k}: {', '.join(v) if v else 'none'}" for k, v in verdicts.items())
            + " (tricks without a tuned row are not counted).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tr.add_common_arguments(p, RESULTS)
    p.add_argument("--trials", type=int, default=12, help="trials of each search")
    p.add_argument("--search-seeds", default="100,101")
    p.add_argument("--iterations", type=int, default=5000, help="of every run")
    p.add_argument("--only", default="", help="comma-separated tricks")
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--defaults", type=Path, default=RESULTS / "toy_table.json",
                   help="the defaults rows (toy_table.py's results)")
    args = p.parse_args(argv)
    seeds, search_seeds = tr.int_list(args.seeds), tr.int_list(args.search_seeds)
    if set(seeds) & set(search_seeds):
        sys.exit("tuned_toy_table: error: --search-seeds must be disjoint from --seeds")
    datasets = tr.names(args.datasets, DATASETS, "tuned_toy_table", "dataset")
    only = tr.names(args.only, SPACES, "tuned_toy_table", "trick") or list(SPACES)
    raw = args.results / "tuned_toy_table.json"
    args.results.mkdir(parents=True, exist_ok=True)
    command = tr.command_line("tuned_toy_table.py", argv, sys.argv[1:])
    if not args.table_only:
        studies = [(d, t, args.trials, search_seeds, args.iterations, args.threads, str(raw),
                    command) for d in datasets for t in only]
        print(f"tuned_toy_table: {len(studies)} searches of {args.trials} trials, "
              f"{args.jobs} at a time", flush=True)
        tr.run_all(studies, search, args.jobs, lambda s: print(
            f"{s['dataset']:9s} {s['trick']:26s} {s['trials']} trials: best {show(s['best'])} "
            f"(objective {s['objective']:.3g})", flush=True))
        runs = tr.load(raw)
        todo = []
        for d in datasets:
            for t in only:
                pick = chosen(runs, d, t, args.iterations, len(search_seeds))
                if pick is None:  # --trials 0
                    continue
                params = pick[0]
                have = {r["seed"] for r in table_runs(runs, d, t, params)
                        if r["iterations"] == args.iterations}
                todo += [(d, t, params, s, args.iterations, args.threads)
                         for s in seeds if s not in have]

        record = tr.recorder(raw, command, lambda r: tr.toy_line(r, r["trick"]))
        tr.run_all(todo, _table_job, args.jobs, record)
    table = markdown(tr.load(raw), tr.load(args.defaults), args.iterations, len(search_seeds))
    (args.results / "tuned_toy_table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
