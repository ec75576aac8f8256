"""``ganlab-compare <multirun dir>``: the offline view of a sweep.

Groups the runs of a Hydra multirun by variant (their overrides without ``seed``), prints
mean ± standard deviation over seeds of each final metric (from each run's metrics.json),
and plots each variant's metric curves (from metrics_history.jsonl, mean over seeds).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

from omegaconf import OmegaConf

IGNORED = ("seed=", "hydra.", "ckpt_path=", "resume=")


def find_runs(root: Path) -> dict[str, list[Path]]:
    """Run directories under ``root`` that have a metrics.json, keyed by variant."""
    variants: dict[str, list[Path]] = defaultdict(list)
    for metrics in sorted(root.rglob("metrics.json")):
        run = metrics.parent
        overrides_file = run / ".hydra" / "overrides.yaml"
        overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() \
            else []
        key = " ".join(sorted(o for o in overrides if not o.startswith(IGNORED))) or "(defaults)"
        variants[key].append(run)
    return dict(variants)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var)


def summarize(variants: dict[str, list[Path]]) -> tuple[list[str], list[list[str]]]:
    """Table header and rows: variant, number of seeds, then mean ± std per metric."""
    finals = {k: [json.loads((r / "metrics.json").read_text()) for r in runs]
              for k, runs in variants.items()}
    names = sorted({m for rows in finals.values() for row in rows for m, v in row.items()
                    if m not in ("iterations", "num_samples", "num_modes") and is_number(v)})
    table = []
    for variant, rows in finals.items():
        cells = [variant, str(len(rows))]
        for name in names:
            values = [float(row[name]) for row in rows if is_number(row.get(name))]
            if not values:
                cells.append("-")
                continue
            mean, std = mean_std(values)
            cells.append(f"{mean:.4g} ± {std:.2g}")
        table.append(cells)
    return ["variant", "runs", *names], table


def is_number(value: object) -> bool:
    """True for the numeric entries of metrics.json (not e.g. its ``protocol`` dict)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def plot_curves(variants: dict[str, list[Path]], path: Path) -> bool:
    """One panel per metric, one line per variant (mean over its runs); False if no history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, dict[str, dict[int, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list)))
    for variant, runs in variants.items():
        for run in runs:
            history = run / "metrics_history.jsonl"
            if not history.is_file():
                continue
            for line in history.read_text().splitlines():
                row = json.loads(line)
                for name, value in row.items():
                    if name not in ("iterations", "num_samples", "num_modes") and is_number(value):
                        curves[name][variant][int(row["iterations"])].append(float(value))
    if not curves:
        return False
    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4), squeeze=False)
    for ax, (name, per_variant) in zip(axes[0], sorted(curves.items()), strict=True):
        for variant, points in sorted(per_variant.items()):
            steps = sorted(points)
            ax.plot(steps, [sum(points[s]) / len(points[s]) for s in steps], label=variant)
        ax.set_title(name)
        ax.set_xlabel("iteration")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("multirun_dir", type=Path)
    parser.add_argument("--plot", type=Path, default=None,
                        help="where to write the curves (default: <multirun_dir>/compare.png)")
    args = parser.parse_args(argv)
    if not args.multirun_dir.is_dir():
        print(f"ganlab: error: no such directory: {args.multirun_dir.resolve()}", file=sys.stderr)
        sys.exit(2)
    variants = find_runs(args.multirun_dir)
    if not variants:
        print(f"ganlab: error: no run with a metrics.json under {args.multirun_dir.resolve()}",
              file=sys.stderr)
        sys.exit(2)
    header, rows = summarize(variants)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for line in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))
    plot = args.plot or args.multirun_dir / "compare.png"
    if plot_curves(variants, plot):
        print(f"\ncurves: {plot}")


if __name__ == "__main__":
    main()
