"""``ganlab-compare <multirun dir>``: a sweep's table and curves in the terminal.

Groups the runs of a Hydra multirun by variant (named by the overrides that differ between
variants, the seed left out), prints mean ± sample standard deviation over seeds of each
final metric (each run's metrics.json), and draws each variant's curves as mean ± std bands
(metrics_history.jsonl, and the training scalars of csv/metrics.csv) into
``<multirun dir>/compare.png``. ``ganlab-dashboard`` shows the same numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ganlab.app.sweep import Sweep, read_sweep


def load(multirun_dir: Path) -> Sweep:
    """The sweep in ``multirun_dir``; one line and exit 2 if there is none."""
    if not multirun_dir.is_dir():
        print(f"ganlab: error: no such directory: {multirun_dir.resolve()}", file=sys.stderr)
        sys.exit(2)
    sweep = read_sweep(multirun_dir)
    if not sweep.runs:
        print(f"ganlab: error: no run with a metrics.json under {multirun_dir.resolve()}",
              file=sys.stderr)
        sys.exit(2)
    return sweep


def format_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    return ["  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in [header, *rows]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("multirun_dir", type=Path)
    parser.add_argument("--plot", type=Path, default=None,
                        help="where to write the curves (default: <multirun_dir>/compare.png)")
    args = parser.parse_args(argv)
    sweep = load(args.multirun_dir)
    for line in format_table(*sweep.table()):
        print(line)
    from ganlab.app.sweep_plots import save_curves

    plot = args.plot or args.multirun_dir / "compare.png"
    if save_curves(sweep, plot):
        print(f"\ncurves: {plot}")


if __name__ == "__main__":
    main()
