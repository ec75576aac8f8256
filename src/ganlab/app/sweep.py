"""A sweep and its variants: what a run is within its sweep, and a multirun folder read back.

A *variant* is a run's command-line overrides without the seed (and without settings that do
not change the experiment: Hydra's, paths, the logger, resume), sorted, so the seeds of one
variant share one key. The *sweep id* is ``<name>/<multirun folder's name>``: two sweeps of one
``name`` do not mix. Runs store both in ``checkpoints/sweep_run.json`` (a resume keeps them);
``ganlab-compare`` and ``ganlab-dashboard`` read them, with mean ± sample std over seeds.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

#: Overrides that are not part of a variant.
NOT_VARIANT = ("seed=", "hydra.", "ckpt_path=", "resume=", "paths.", "logger")
#: Entries of metrics.json / metrics_history.jsonl that are counts, not measurements.
NOT_METRICS = ("iterations", "num_samples", "num_modes")
#: Beside the checkpoints: the run's place in its sweep (kept by a resume).
IDENTITY_FILE = "sweep_run.json"
#: W&B limits: a group of at most 128 characters, a job type of at most 64.
GROUP_MAX, JOB_TYPE_MAX = 128, 64


def variant_key(overrides: list[str]) -> str:
    """The variant of a run with these overrides: the others than ``NOT_VARIANT``, sorted."""
    kept = sorted(str(o) for o in overrides if not str(o).lstrip("+~").startswith(NOT_VARIANT))
    return " ".join(kept) or "(defaults)"


def sweep_id(name: str, sweep_dir: str | Path) -> str:
    """The id of the sweep whose multirun folder is ``sweep_dir``."""
    return f"{name}/{Path(sweep_dir).name}"[:GROUP_MAX]


def run_identity(cfg: DictConfig) -> dict[str, Any]:
    """This job's place in its sweep: variant, sweep id (None outside a multirun), seed, and
    the W&B group (the sweep, else ``name``) and job type (the variant)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    overrides, sweep, swept = [], None, set()
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        overrides = [str(o) for o in hydra_cfg.overrides.task]
        if hydra_cfg.mode == RunMode.MULTIRUN:
            sweep = sweep_id(str(cfg.name), hydra_cfg.sweep.dir)
            swept = swept_keys(hydra_cfg.sweeper, Path(hydra_cfg.sweep.dir))
    variant = variant_key(overrides)
    # W&B shows the job type: the swept values name the variant in fewer characters.
    job_type = variant_key([o for o in overrides if override_key(o) in swept]) if swept \
        else variant
    return {"variant": variant, "sweep": sweep, "seed": int(cfg.seed),
            "group": sweep or str(cfg.name)[:GROUP_MAX], "job_type": shorten(job_type)}


def override_key(override: str) -> str:
    """``+a.b=1`` → ``a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def swept_keys(sweeper: Any, sweep_dir: Path) -> set[str]:
    """The keys a multirun sweeps: the sweeper's ``params`` (an Optuna search space) and the
    command line's sweeps (``a=1,2``, ``range(...)``), which Hydra's basic sweeper saves in
    ``<sweep dir>/multirun.yaml`` before the jobs start."""
    keys = {str(k) for k in (OmegaConf.select(sweeper, "params") or {})}
    saved = sweep_dir / "multirun.yaml"
    if saved.is_file():
        from hydra.core.override_parser.overrides_parser import OverridesParser

        task = OmegaConf.select(OmegaConf.load(saved), "hydra.overrides.task") or []
        try:
            parsed = OverridesParser.create().parse_overrides([str(o) for o in task])
        except Exception:  # a sweep Hydra accepted parses; be safe with a hand-edited file
            parsed = []
        keys |= {o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()}
    return keys - {"seed"}


def shorten(text: str, limit: int = JOB_TYPE_MAX) -> str:
    """``text`` within ``limit`` characters, distinct texts kept distinct (a hash suffix)."""
    if len(text) <= limit:
        return text
    import hashlib

    return f"{text[:limit - 9]}~{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def save_identity(folder: str | Path, identity: dict[str, Any]) -> None:
    """Write ``identity`` to ``<folder>/sweep_run.json``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / IDENTITY_FILE).write_text(json.dumps(identity, indent=1) + "\n")


def load_identity(folder: str | Path) -> dict[str, Any] | None:
    """The identity saved in ``folder``, or None."""
    path = Path(folder) / IDENTITY_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


# -- a multirun folder read back ----------------------------------------------------------


def is_number(value: object) -> bool:
    """True for numeric entries (not e.g. metrics.json's ``protocol`` dict, not booleans)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n − 1; 0 for a single value)."""
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return mean, math.sqrt(var)


def format_mean_std(values: list[float]) -> str:
    """``mean ± std`` as the tables print it ("-" for no value)."""
    if not values:
        return "-"
    mean, std = mean_std(values)
    return f"{mean:.4g} ± {std:.2g}"


@dataclass
class Run:
    """One run directory of a sweep."""

    path: Path
    overrides: list[str]
    variant: str
    seed: int | None
    final: dict[str, Any]
    #: W&B key (``val/<metric>``, ``train/<scalar>``) → {iteration: value}.
    curves: dict[str, dict[int, float]]
    #: picture name (``scatter``, ``samples``, ...) → its file at the last iteration.
    pictures: dict[str, Path]
    config: dict[str, Any]
    sweep: str | None = None


@dataclass
class Sweep:
    """The runs of a multirun folder, grouped by variant."""

    root: Path
    id: str
    runs: list[Run]
    #: variant label (the overrides that differ between variants) → its runs, by seed.
    variants: dict[str, list[Run]] = field(default_factory=dict)
    #: Optuna: the searched parameters (``hydra.sweeper.params``) and the objective's metric.
    search_params: list[str] = field(default_factory=list)
    objective: str | None = None

    @property
    def project(self) -> str:
        """The W&B project the runs logged to (``logger.wandb.project``; default ``ganlab``)."""
        for run in self.runs:
            project = select(run.config, "logger.wandb.project")
            if project:
                return str(project)
        return "ganlab"

    def final_metrics(self) -> list[str]:
        """Names of the numeric final metrics (metrics.json) that some run has."""
        return sorted({m for r in self.runs for m, v in r.final.items()
                       if m not in NOT_METRICS and is_number(v)})

    def curve_keys(self) -> list[str]:
        """W&B keys of the curves the runs logged: ``val/*`` first, then ``train/*``."""
        keys = {k for r in self.runs for k in r.curves}
        return sorted(keys, key=lambda k: (not k.startswith("val/"), k))

    def picture_names(self) -> list[str]:
        return sorted({p for r in self.runs for p in r.pictures})

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Header and rows: variant, number of runs, mean ± std over seeds per final metric."""
        names = self.final_metrics()
        rows = []
        for label, runs in self.variants.items():
            cells = [label, str(len(runs))]
            for name in names:
                cells.append(format_mean_std([float(r.final[name]) for r in runs
                                              if is_number(r.final.get(name))]))
            rows.append(cells)
        return ["variant", "runs", *names], rows

    def band(self, label: str, key: str) -> tuple[list[int], list[float], list[float]]:
        """Iterations, mean and sample std over the variant's seeds of curve ``key``."""
        points: dict[int, list[float]] = {}
        for run in self.variants[label]:
            for step, value in run.curves.get(key, {}).items():
                points.setdefault(step, []).append(value)
        steps = sorted(points)
        stats = [mean_std(points[s]) for s in steps]
        return steps, [m for m, _ in stats], [s for _, s in stats]

    def protocol(self) -> list[tuple[str, str]]:
        """How the numbers were measured: metrics.json's ``protocol`` (image metrics) and the
        evaluation settings, each with its value or, where runs disagree, all their values."""
        rows: dict[str, list[str]] = {}

        def add(name: str, value: Any) -> None:
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            if text not in rows.setdefault(name, []):
                rows[name].append(text)

        for run in self.runs:
            for key in ("data._target_", "train.iterations", "train.batch_size",
                        "metrics.num_samples", "metrics.every_n_iterations"):
                value = select(run.config, key)
                if value is not None:
                    add(key, value)
            for key in ("num_samples", "num_modes"):
                if key in run.final:
                    add(f"metrics.json {key}", run.final[key])
            for key, value in flatten(run.final.get("protocol") or {}):
                add(f"protocol.{key}", value)
        return [(name, " | ".join(values)) for name, values in rows.items()]


def select(config: dict[str, Any], key: str) -> Any:
    """``config``'s value at the dotted ``key`` (None if absent or an unresolvable
    interpolation, such as ``${hydra:...}`` outside Hydra)."""
    return OmegaConf.select(OmegaConf.create(config), key, throw_on_resolution_failure=False)


def flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` → ``[("a.b", 1)]``."""
    out = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def labels(keys: list[str]) -> dict[str, str]:
    """Variant key → label: only the overrides that differ between variants (an override one
    variant lacks differs); ``(defaults)`` where nothing is left."""
    split = {k: set(k.split()) - {"(defaults)"} for k in keys}
    common = set.intersection(*split.values()) if split else set()
    return {k: " ".join(sorted(split[k] - common)) or "(defaults)" for k in keys}


def read_run(path: Path) -> Run:
    """A run directory: overrides, identity, metrics.json, its curves and last pictures."""
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.is_file() \
        else []
    config_file = path / ".hydra" / "config.yaml"
    config = OmegaConf.to_container(OmegaConf.load(config_file)) if config_file.is_file() else {}
    identity = load_identity(path / "checkpoints") or {}
    seed = identity.get("seed", config.get("seed"))
    return Run(path=path, overrides=overrides,
               variant=identity.get("variant") or variant_key(overrides),
               seed=int(seed) if is_number(seed) else None,
               final=json.loads((path / "metrics.json").read_text()),
               curves=read_curves(path), pictures=last_pictures(path / "samples"),
               config=config, sweep=identity.get("sweep"))


def read_curves(path: Path) -> dict[str, dict[int, float]]:
    """``val/*`` from metrics_history.jsonl and ``train/*`` from the CSV log beside W&B's
    (``csv/metrics.csv``, written under ``logger=wandb`` and ``logger=csv``)."""
    curves: dict[str, dict[int, float]] = {}
    history = path / "metrics_history.jsonl"
    if history.is_file():
        for line in history.read_text().splitlines():
            row = json.loads(line)
            for name, value in row.items():
                if name not in NOT_METRICS and is_number(value):
                    curves.setdefault(f"val/{name}", {})[int(row["iterations"])] = float(value)
    table = path / "csv" / "metrics.csv"
    if table.is_file():
        with open(table, newline="") as handle:
            for row in csv.DictReader(handle):
                step = row.get("step")
                for name, value in row.items():
                    if name.startswith("train/") and value not in (None, "") and step:
                        curves.setdefault(name, {})[int(float(step))] = float(value)
    return curves


def last_pictures(folder: Path) -> dict[str, Path]:
    """``samples/<name>_<iteration>.png`` of the highest iteration, for each picture name."""
    out: dict[str, tuple[int, Path]] = {}
    for png in folder.glob("*.png") if folder.is_dir() else []:
        name, _, step = png.stem.rpartition("_")
        if name and step.isdigit() and int(step) >= out.get(name, (-1, png))[0]:
            out[name] = (int(step), png)
    return {name: png for name, (_, png) in sorted(out.items())}


def read_sweep(root: Path) -> Sweep:
    """Every run with a metrics.json under ``root``, grouped by variant (labelled by the
    overrides that differ), each variant's runs ordered by seed."""
    runs = [read_run(m.parent) for m in sorted(root.rglob("metrics.json"))]
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        by_key.setdefault(run.variant, []).append(run)
    names = labels(list(by_key))
    variants = {names[k]: sorted(v, key=lambda r: (r.seed is None, r.seed or 0, str(r.path)))
                for k, v in sorted(by_key.items(), key=lambda kv: names[kv[0]])}
    stored = sorted({r.sweep for r in runs if r.sweep})
    name = next((str(r.config["name"]) for r in runs if r.config.get("name")), root.parent.name)
    sweep = Sweep(root=root, id=stored[0] if len(stored) == 1 else sweep_id(name, root),
                  runs=runs, variants=variants)
    sweep.search_params, sweep.objective = search_space(runs)
    return sweep


def search_space(runs: list[Run]) -> tuple[list[str], str | None]:
    """An Optuna study's searched parameters (``hydra.sweeper.params`` of its trials'
    ``.hydra/hydra.yaml``) and its objective, the final reverse KL that ganlab-train returns
    to the sweeper; ``([], None)`` for another sweep."""
    for run in runs:
        path = run.path / ".hydra" / "hydra.yaml"
        if not path.is_file():
            continue
        sweeper = OmegaConf.select(OmegaConf.load(path), "hydra.sweeper") or {}
        if "optuna" in str(sweeper.get("_target_", "")).lower():
            return sorted(str(k) for k in (sweeper.get("params") or {})), "reverse_kl"
        return [], None
    return [], None
