"""What the benchmark tables share: one real ``ganlab`` run composed in Python, the results
file of JSON lines (one run per line, appended as each finishes, so a table is built over
several sittings) and the mean ± std cells.

Used by ``toy_table.py``, ``tuned_toy_table.py`` and ``stacked_mnist_table.py``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

#: Overrides of every run: no logger, no checkpoints or figures, one final evaluation.
QUIET = [
    "logger=none",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "~callbacks.checkpoint",
    "~callbacks.samples",
]

#: The toy mixtures' metrics (PacGAN/VEEGAN Table 1) and how each is recorded.
TOY_METRICS: dict[str, type] = {
    "modes_covered": int, "num_modes": int, "hq_fraction": float, "reverse_kl": float,
}


def machine() -> str:
    """The machine a run ran on, in words (cores, architecture, torch)."""
    import torch

    return f"{os.cpu_count()}-core {platform.machine()}, torch {torch.__version__}"


def run_one(overrides: list[str], seed: int, threads: int = 1,
            keys: dict[str, type] | None = None) -> dict[str, Any]:
    """Train one ganlab run (``ganlab-train <overrides> seed=<seed>`` without logger,
    checkpoints or figures) in this process: the final metrics named in ``keys`` (default: the
    toy mixtures'), its iterations, wall and CPU seconds, threads and machine."""
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from ganlab.app.cli import config_dir
    from ganlab.app.train import train

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as out:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            cfg = compose(
                config_name="train",
                overrides=[*QUIET, *overrides, f"seed={seed}"],
                return_hydra_config=True,
            )
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = out
            cfg.hydra.job.num = 0
            if cfg.callbacks.get("evaluation") is not None:
                cfg.metrics.every_n_iterations = 0  # final evaluation only
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            del cfg["hydra"]
        iterations = int(cfg.train.iterations)
        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            metrics = train(cfg)
        finally:
            GlobalHydra.instance().clear()
            HydraConfig.instance().cfg = None
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    kinds = TOY_METRICS if keys is None else keys
    return {
        **{k: kind(metrics[k]) for k, kind in kinds.items()},
        "iterations": iterations,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "threads": threads,
        "machine": machine(),
    }


def load(path: Path) -> list[dict[str, Any]]:
    """The runs recorded in ``path`` (one JSON object per line)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append(path: Path, record: dict[str, Any]) -> None:
    """Record one finished run at the end of ``path`` (one JSON line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def mean_std(values: Sequence[float]) -> str:
    """``mean ± sample std`` (3 and 2 significant digits); one value alone; ``∞`` entries (no
    high-quality sample: KL undefined) counted apart."""
    finite = [v for v in values if not math.isinf(v)]
    if len(finite) < len(values):
        rest = f"; the others {mean_std(finite)}" if finite else ""
        return f"∞ in {len(values) - len(finite)} of {len(values)} seeds{rest}"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.3g}"  # one seed: no spread to report
    return f"{mean:.3g} ± {statistics.stdev(values):.2g}"


def command_line(script: str, argv: Sequence[str] | None, default: Sequence[str]) -> str:
    """The command that produced a run, as recorded in the results file."""
    args = list(argv if argv is not None else default)
    return f"python benchmarks/{script} {' '.join(args)}".strip()


def latest(runs: Iterable[dict[str, Any]], match: Callable[[dict[str, Any]], bool]
           ) -> list[dict[str, Any]]:
    """The runs that ``match``, of their longest length only, one per seed (sorted by seed)."""
    mine = [r for r in runs if match(r)]
    if not mine:
        return []
    iterations = max(r["iterations"] for r in mine)
    by_seed = {r["seed"]: r for r in mine if r["iterations"] == iterations}
    return [by_seed[s] for s in sorted(by_seed)]


def run_all(todo: list[tuple], job: Callable[..., dict[str, Any]], jobs: int,
            done: Callable[[dict[str, Any]], None]) -> None:
    """``job(*t)`` for each ``t`` of ``todo``, ``jobs`` at a time (in spawned processes; in this
    one when ``jobs`` is 1), calling ``done`` with each result as it finishes."""
    if jobs <= 1:
        for t in todo:
            done(job(*t))
        return
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(job, *t) for t in todo]
        for fut in as_completed(futures):
            done(fut.result())


def add_common_arguments(parser: argparse.ArgumentParser, results: Path) -> None:
    """The options every table script has: --seeds, --jobs, --threads, --results,
    --table-only."""
    parser.add_argument("--seeds", default="0,1,2,3,4", help="seeds of the table rows")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--results", type=Path, default=results)
    parser.add_argument("--table-only", action="store_true",
                        help="rebuild the table, run nothing")


def int_list(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``."""
    return [int(s) for s in text.split(",") if s.strip()]


def names(text: str, valid: Iterable[str], script: str, what: str) -> list[str]:
    """The comma-separated names of ``text``; exits with one line on a name not in ``valid``."""
    valid = list(valid)
    out = [n for n in text.split(",") if n]
    for n in out:
        if n not in valid:
            sys.exit(f"{script}: error: unknown {what} {n!r}; valid: {', '.join(valid)}")
    return out


def recorder(raw: Path, command: str, describe: Callable[[dict[str, Any]], str]
             ) -> Callable[[dict[str, Any]], None]:
    """What to do with each finished run: record it in ``raw`` with its ``command`` and print
    ``describe(run)``."""

    def record(result: dict[str, Any]) -> None:
        r = {**result, "command": command}
        append(raw, r)
        print(describe(r), flush=True)

    return record


def toy_line(r: dict[str, Any], name: str) -> str:
    """One line of a finished toy run (``name``: its row or trick)."""
    return (f"{r['dataset']:9s} {name:30s} seed {r['seed']}: {r['modes_covered']}/"
            f"{r['num_modes']} modes, hq {r['hq_fraction']:.3f}, KL {r['reverse_kl']:.4f}, "
            f"{r['wall_s']:.0f} s")
