"""Figures of a sweep: each variant's curve as mean ± std over seeds, and an Optuna study's
parallel coordinates. Shared by ``ganlab-compare`` and ``ganlab-dashboard``."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ganlab.app.sweep import Sweep, is_number  # noqa: E402


def draw_band(ax: plt.Axes, sweep: Sweep, key: str) -> int:
    """One line per variant (mean over seeds) with a ± sample-std band; the lines drawn."""
    drawn = 0
    for index, label in enumerate(sweep.variants):
        steps, mean, std = sweep.band(label, key)
        if not steps:
            continue
        color = f"C{index % 10}"
        mean_a, std_a = np.asarray(mean), np.asarray(std)
        ax.plot(steps, mean_a, color=color, label=label)
        ax.fill_between(steps, mean_a - std_a, mean_a + std_a, color=color, alpha=0.2,
                        linewidth=0)
        drawn += 1
    ax.set_title(key)
    ax.set_xlabel("iteration")
    return drawn


def curves_figure(sweep: Sweep, keys: list[str]) -> plt.Figure | None:
    """One panel per key (in a row), one band per variant; None without any curve."""
    keys = [k for k in keys if any(k in r.curves for r in sweep.runs)]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        draw_band(ax, sweep, key)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def metric_png(sweep: Sweep, key: str) -> bytes:
    """PNG bytes of one metric's panel (the dashboard's line panel, offline)."""
    fig, ax = plt.subplots(figsize=(5, 3.6))
    draw_band(ax, sweep, key)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return to_png(fig)


def parallel_png(sweep: Sweep) -> bytes | None:
    """Parallel coordinates of an Optuna study: one line per trial through its searched
    parameters (each axis scaled to [0, 1] over the trials) and the objective, coloured by
    the objective; None unless the sweep is a study with finished trials."""
    if not sweep.search_params or sweep.objective is None:
        return None
    axes_names = [*sweep.search_params, sweep.objective]
    rows = []
    for run in sweep.runs:
        values = dict(o.lstrip("+").split("=", 1) for o in run.overrides if "=" in o)
        row = [_number(values.get(p)) for p in sweep.search_params]
        row.append(_number(run.final.get(sweep.objective)))
        if all(v is not None for v in row):
            rows.append(row)
    if not rows:
        return None
    data = np.asarray(rows, dtype=float)
    low, high = data.min(0), data.max(0)
    scaled = (data - low) / np.where(high > low, high - low, 1.0)
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(axes_names), 3.6))
    colors = plt.cm.viridis(scaled[:, -1])
    for line, color in zip(scaled, colors, strict=True):
        ax.plot(range(len(axes_names)), line, color=color, alpha=0.8)
    ax.set_xticks(range(len(axes_names)), axes_names, rotation=20, ha="right", fontsize=8)
    ax.set_yticks([])
    for i, (lo, hi) in enumerate(zip(low, high, strict=True)):
        ax.annotate(f"{hi:.3g}", (i, 1.0), fontsize=7, ha="center", va="bottom")
        ax.annotate(f"{lo:.3g}", (i, 0.0), fontsize=7, ha="center", va="top")
    ax.set_title(f"searched parameters and {sweep.objective} ({len(rows)} trials)")
    fig.tight_layout()
    return to_png(fig)


def _number(text: object) -> float | None:
    if is_number(text):
        return float(text)  # type: ignore[arg-type]
    try:
        return float(str(text))
    except ValueError:
        return None


def to_png(fig: plt.Figure) -> bytes:
    """The figure as PNG bytes; closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def save_curves(sweep: Sweep, path: Path) -> bool:
    """``ganlab-compare``'s figure: every curve key's panel; False if no run has a curve."""
    fig = curves_figure(sweep, sweep.curve_keys())
    if fig is None:
        return False
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
