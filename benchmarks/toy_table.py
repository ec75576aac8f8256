"""Mode collapse on the toy mixtures: the plain GAN, each trick and the best presets, beside the
published rows of PacGAN (Lin et al. 2018, Table 1) and VEEGAN (Srivastava et al. 2017, Table 1).

Every run is a real ``ganlab`` training run (the Hydra config of ``ganlab-train``, composed in
Python, with ``logger=none`` and only the evaluation callback), evaluated on 2,500 samples from
the fixed evaluation seed (modes covered, high-quality share, reverse KL: the PacGAN/VEEGAN
protocol). Each row is the mean ± sample standard deviation over the seeds.

    python benchmarks/toy_table.py [--seeds 0,1,2,3,4] [--iterations 5000] [--only plain,r1]
        [--datasets toy_grid,toy_ring] [--jobs 2] [--threads 1] [--table-only]

Results are appended to ``benchmarks/results/toy_table.json`` as each run finishes (a run
already there with the same dataset, row, seed and iterations is not run again), and the table
is rewritten from that file: ``toy_table.md`` and ``toy_table.png``. Rows without a measurement
are shown as "not run".
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import table_runs as tr

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = ("toy_grid", "toy_ring")

#: The protocol's sample count (the other quiet overrides: ``table_runs.QUIET``).
PROTOCOL = ["metrics.num_samples=2500"]

#: The rows of the table: name -> overrides added to ``data=<dataset>`` (plain GAN: the default
#: non-saturating MLP 3x128, latent 2, Adam 1e-3, batch 256). Per-trick settings are the
#: trick's config defaults unless stated.
TRICK_ROWS: dict[str, list[str]] = {
    "plain": [],
    "label_smoothing": ["tricks=[label_smoothing]"],
    # sigma 0.1 annealed to 0 over the run.
    "instance_noise": ["tricks=[instance_noise]",
                       "tricks.instance_noise.anneal_iterations=${train.iterations}"],
    # VBN needs batch norm in G: the MLP generator's batch_norm option.
    "virtual_batch_norm": ["tricks=[virtual_batch_norm]", "generator.net.batch_norm=true"],
    "minibatch_discrimination": ["tricks=[minibatch_discrimination]"],
    "feature_matching": ["tricks=[feature_matching]"],
    "historical_averaging": ["tricks=[historical_averaging]"],
    "ttur": ["tricks=[ttur]"],
    "ema": ["tricks=[ema]"],
    "spectral_norm": ["tricks=[spectral_norm]"],
    "r1": ["tricks=[r1]"],
    "gradient_penalty": ["tricks=[gradient_penalty]"],
}

#: The presets are run at their own length (``--iterations`` does not apply to them).
PRESET_ROWS: dict[str, dict[str, list[str]]] = {
    "toy_grid": {"best preset (experiment=toy_grid_best)": ["experiment=toy_grid_best"]},
    "toy_ring": {"best preset (experiment=toy_ring_best)": ["experiment=toy_ring_best"]},
}

#: Published rows, same protocol (2,500 samples; modes, high-quality %, reverse KL).
PUBLISHED: dict[str, list[tuple[str, float, float, float | None]]] = {
    "toy_grid": [
        ("PacGAN Table 1: GAN", 17.3, 94.8, 0.70),
        ("PacGAN Table 1: PacGAN4", 24.8, 93.6, 0.04),
        ("VEEGAN Table 1: GAN", 3.3, 0.5, None),
        ("VEEGAN Table 1: Unrolled GAN", 23.6, 16.0, None),
        ("VEEGAN Table 1: VEEGAN", 24.6, 40.0, None),
    ],
    "toy_ring": [
        ("PacGAN Table 1: GAN", 6.3, 98.2, 0.45),
        ("PacGAN Table 1: PacGAN2", 7.9, 95.6, 0.07),
        ("VEEGAN Table 1: GAN", 1.0, 99.3, None),
        ("VEEGAN Table 1: VEEGAN", 8.0, 52.9, None),
    ],
}


def row_overrides(dataset: str, row: str, iterations: int) -> list[str]:
    """The overrides of ``row`` on ``dataset`` (trick rows run ``iterations`` iterations)."""
    if row in TRICK_ROWS:
        return [*PROTOCOL, f"data={dataset}", f"train.iterations={iterations}", *TRICK_ROWS[row]]
    return [*PROTOCOL, *PRESET_ROWS[dataset][row]]


def _job(dataset: str, row: str, seed: int, iterations: int, threads: int) -> dict[str, Any]:
    os.environ.setdefault("WANDB_MODE", "offline")
    overrides = row_overrides(dataset, row, iterations)
    result = tr.run_one(overrides, seed, threads)
    return {"dataset": dataset, "row": row, "seed": seed, "overrides": overrides, **result}


def summarize(runs: list[dict[str, Any]], dataset: str, row: str) -> dict[str, Any] | None:
    """Mean ± std over seeds of ``row`` on ``dataset`` (runs of the longest length only)."""
    rs = tr.latest(runs, lambda r: r["dataset"] == dataset and r["row"] == row)
    if not rs:
        return None
    return {
        "seeds": [r["seed"] for r in rs],
        "iterations": rs[0]["iterations"],
        "modes": [r["modes_covered"] for r in rs],
        "hq": [100 * r["hq_fraction"] for r in rs],
        "kl": [r["reverse_kl"] for r in rs],
        "wall": [r["wall_s"] for r in rs],
        "num_modes": rs[0]["num_modes"],
        "machine": sorted({r.get("machine", "?") for r in rs}),
    }


def all_rows(dataset: str) -> list[str]:
    return [*TRICK_ROWS, *PRESET_ROWS[dataset]]


def markdown(runs: list[dict[str, Any]], iterations: int) -> str:
    """The table (one section per dataset) as markdown."""
    commands = list(dict.fromkeys(r.get("command", "") for r in runs if r.get("command")))
    lines = [
        "# Mode collapse on the toy mixtures",
        "",
        "Produced by these commands (each appends its runs to `toy_table.json`; the table is "
        "rebuilt from that file, also by `python benchmarks/toy_table.py --table-only`):",
        "",
        *[f"    {c}" for c in commands],
        "",
        "Protocol: each run is evaluated on 2,500 samples of G (of its EMA when the `ema` trick "
        "is on) from the fixed evaluation noise seed; a sample is high-quality when within 3σ "
        "of its nearest mode; reverse KL is KL(mode histogram of the high-quality samples ‖ "
        "uniform). Cells are mean ± sample standard deviation over the seeds listed. Trick rows: "
        "the plain GAN (non-saturating cost, MLP G and D of 3×128, latent dimension 2, Adam lr "
        f"1e-3 β=(0.5, 0.999), batch 256) plus one trick with its config defaults, trained for "
        f"{iterations} iterations (a shorter protocol than the default 10,000, to fit the CPU "
        "budget); the presets run at their own length. Wall time: seconds per run, one CPU "
        "thread per run, as many runs in parallel as the machine has cores (column "
        "'machine'; the presets on the 2-core machine of the bar, shared with other jobs, so "
        "pessimistic); CPU s is the run's own CPU time. Every trick keeps its config "
        "defaults, tuned for nothing here: a row that collapses says that those defaults do "
        "not suit this GAN, not that the trick cannot help. Rows marked \"not run\" were "
        "not measured.",
        "",
    ]
    for dataset in DATASETS:
        lines += [f"## {dataset}", "",
                  "| row | iterations | seeds | modes covered | high-quality % | reverse KL "
                  "| wall s | machine |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in all_rows(dataset):
            s = summarize(runs, dataset, row)
            if s is None:
                lines.append(f"| {row} | | | not run | not run | not run | | |")
                continue
            seeds = ",".join(str(x) for x in s["seeds"])
            lines.append(
                f"| {row} | {s['iterations']} | {seeds} | {tr.mean_std(s['modes'])} "
                f"/ {s['num_modes']} | {tr.mean_std(s['hq'])} | {tr.mean_std(s['kl'])} "
                f"| {statistics.fmean(s['wall']):.0f} | {'; '.join(s['machine'])} |"
            )
        for name, modes, hq, kl in PUBLISHED[dataset]:
            kl_text = "—" if kl is None else f"{kl}"
            lines.append(f"| *{name}* (published) | | | {modes} | {hq} | {kl_text} | | |")
        lines.append("")
        for row in PRESET_ROWS[dataset]:
            mine = sorted((r for r in runs if r["dataset"] == dataset and r["row"] == row),
                          key=lambda r: r["seed"])
            if not mine:
                continue
            lines += [f"Per seed, {row} (the bar: all {mine[0]['num_modes']} modes, "
                      "high-quality > 90 %, reverse KL < 0.04; column 'bar' checks these three; "
                      "time: see wall and CPU seconds):", "",
                      "| seed | modes | high-quality % | reverse KL | wall s | CPU s | bar |",
                      "|---|---|---|---|---|---|---|"]
            for r in mine:
                ok = (r["modes_covered"] == r["num_modes"] and r["hq_fraction"] > 0.9
                      and r["reverse_kl"] < 0.04)
                lines.append(
                    f"| {r['seed']} | {r['modes_covered']} | {100 * r['hq_fraction']:.1f} "
                    f"| {r['reverse_kl']:.4f} | {r['wall_s']:.0f} | {r.get('cpu_s', '')} "
                    f"| {'yes' if ok else 'NO'} |")
            lines.append("")
    return "\n".join(lines)


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    """Bar charts of modes covered, high-quality % and reverse KL (mean, std error bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(DATASETS), 3, figsize=(16, 9), squeeze=False)
    for i, dataset in enumerate(DATASETS):
        rows = [r for r in all_rows(dataset) if summarize(runs, dataset, r) is not None]
        stats = [summarize(runs, dataset, r) for r in rows]
        for j, (key, title) in enumerate(
            [("modes", "modes covered"), ("hq", "high-quality %"), ("kl", "reverse KL")]
        ):
            ax = axes[i][j]
            finite = [[v for v in s[key] if not math.isinf(v)] for s in stats]
            means = [statistics.fmean(v) if v else 0.0 for v in finite]
            stds = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in finite]
            for x, (s, v) in enumerate(zip(stats, finite, strict=True)):
                if len(v) < len(s[key]):  # seeds with no high-quality sample: KL = ∞
                    ax.annotate(f"∞×{len(s[key]) - len(v)}", (x, means[x]), ha="center",
                                va="bottom", fontsize=7, color="tab:red")
            ax.bar(range(len(rows)), means, yerr=stds, capsize=3, color="tab:blue")
            ax.set_xticks(range(len(rows)))
            ax.set_xticklabels([r.split(" ")[0] if r.startswith("best") is False else "best"
                                for r in rows], rotation=70, fontsize=7)
            ax.set_title(f"{dataset}: {title}")
            if key == "modes" and stats:
                ax.axhline(stats[0]["num_modes"], color="k", lw=0.8, ls=":")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tr.add_common_arguments(p, RESULTS)
    p.add_argument("--iterations", type=int, default=5000, help="iterations of the trick rows")
    p.add_argument("--only", default="", help="comma-separated rows (names or 'best')")
    p.add_argument("--datasets", default=",".join(DATASETS))
    args = p.parse_args(argv)
    seeds = tr.int_list(args.seeds)
    datasets = tr.names(args.datasets, DATASETS, "toy_table", "dataset")
    only = tr.names(args.only, ["best", *TRICK_ROWS], "toy_table", "row")
    raw = args.results / "toy_table.json"
    runs = tr.load(raw)
    command = tr.command_line("toy_table.py", argv, sys.argv[1:])

    def wanted(dataset: str, row: str) -> bool:
        if not only:
            return True
        return row in only or ("best" in only and row in PRESET_ROWS[dataset])

    done = {(r["dataset"], r["row"], r["seed"], r["iterations"]) for r in runs}
    todo = []
    for dataset in datasets:
        for row in all_rows(dataset):
            if not wanted(dataset, row):
                continue
            its = args.iterations if row in TRICK_ROWS else None
            for seed in seeds:
                if its is not None and (dataset, row, seed, its) in done:
                    continue
                if its is None and any(k[:3] == (dataset, row, seed) for k in done):
                    continue
                todo.append((dataset, row, seed, args.iterations, args.threads))
    args.results.mkdir(parents=True, exist_ok=True)
    if not args.table_only and todo:
        print(f"toy_table: {len(todo)} runs, {args.jobs} at a time", flush=True)

        record = tr.recorder(raw, command, lambda r: tr.toy_line(r, r["row"]))
        tr.run_all(todo, _job, args.jobs, record)
        runs = tr.load(raw)
    table = markdown(runs, args.iterations)
    (args.results / "toy_table.md").write_text(table + "\n")
    plot(runs, args.results / "toy_table.png")
    print(table)


if __name__ == "__main__":
    main()
