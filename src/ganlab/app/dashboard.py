"""``ganlab-dashboard <multirun dir>``: a sweep's W&B report as code, and the same view offline.

The report (wandb-workspaces, W&B's library for reports and workspaces as code) selects the
sweep's runs (W&B group = the sweep id) and groups them by job type (= the variant), so each
variant is one line with its ± std band over seeds: a line panel per logged metric against
iterations, the final-metric table (mean ± std over seeds, as ``ganlab-compare``), the
sample grids at the last iteration, the protocol table and, for an Optuna study, a
parallel-coordinates panel of the searched parameters against the objective. ``--publish``
saves it to W&B and prints its URL. Every call also writes ``<multirun dir>/dashboard.html``:
the same sections, self-contained (figures and samples embedded as PNG), for offline use.
``ganlab-dashboard entity/project --sweep <id>`` reads the runs from W&B instead (online).
"""

from __future__ import annotations

import argparse
import base64
import html
import os
import sys
from pathlib import Path
from typing import Any

from ganlab.app.sweep import Run, Sweep, is_number, labels, read_sweep
from ganlab.core.errors import GanlabError

HTML_NAME = "dashboard.html"


# -- the W&B report -------------------------------------------------------------------------


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (``|`` in cells escaped)."""
    def cell(text: object) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def build_report(sweep: Sweep, entity: str, project: str) -> Any:
    """The sweep's W&B report (a ``wandb_workspaces.reports.v2.Report``; not saved)."""
    import wandb_workspaces.reports.v2 as wr

    def runset(grouped: bool = True) -> Any:
        return wr.Runset(entity=entity, project=project, name=sweep.id,
                         filters=f"Group = '{sweep.id}'",
                         groupby=["JobType"] if grouped else [])

    curves = [wr.LinePlot(title=key, x="iteration", y=[key], groupby_aggfunc="mean",
                          groupby_rangefunc="stddev", title_x="iteration")
              for key in sweep.curve_keys()]
    pictures = [wr.MediaBrowser(title=f"samples/{name}", media_keys=[f"samples/{name}"],
                                num_columns=max(len(sweep.variants), 1))
                for name in sweep.picture_names()]
    blocks: list[Any] = [
        wr.P(f"{len(sweep.runs)} runs of sweep {sweep.id} (W&B group), one line per variant "
             f"(W&B job type) with its ± std band over seeds: " + "; ".join(sweep.variants)),
        wr.H2("Curves"),
        wr.PanelGrid(runsets=[runset()], panels=curves),
        wr.H2("Final metrics: mean ± std over seeds"),
        wr.MarkdownBlock(markdown_table(*sweep.table())),
        wr.H2("Samples at the last iteration"),
        wr.PanelGrid(runsets=[runset()], panels=pictures),
        wr.H2("Protocol"),
        wr.MarkdownBlock(markdown_table(["field", "value"],
                                        [list(r) for r in sweep.protocol()])),
    ]
    if sweep.search_params and sweep.objective:
        columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(p))
                   for p in sweep.search_params]
        columns.append(wr.ParallelCoordinatesPlotColumn(
            metric=wr.SummaryMetric(f"val/{sweep.objective}")))
        blocks += [wr.H2("Search"),
                   wr.PanelGrid(runsets=[runset(grouped=False)], panels=[
                       wr.ParallelCoordinatesPlot(
                           title=f"searched parameters and {sweep.objective}",
                           columns=columns)])]
    return wr.Report(entity=entity, project=project, title=f"ganlab sweep {sweep.id}"[:128],
                     description="built by ganlab-dashboard", blocks=blocks, width="fluid")


def publish(report: Any) -> str:
    """Save ``report`` to W&B; its URL. One line (GanlabError) when W&B cannot be reached."""
    from ganlab.adapter.loggers import resolve_wandb_mode

    mode = resolve_wandb_mode("auto")
    if mode != "online":
        raise GanlabError(f"--publish needs W&B online, and W&B is {mode} here (WANDB_MODE, "
                          "or no API key: `wandb login`)")
    check_reachable()
    if not report.entity:
        report.entity = wandb_api().default_entity or ""
    try:
        report.save()
        return str(report.url)
    except Exception as exc:  # requests/wandb errors: no network, a wrong key, no such entity
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise GanlabError(f"--publish could not save the report to W&B ({text})") from exc


def check_reachable(timeout: float = 5.0) -> None:
    """One line (GanlabError) unless W&B's server (``WANDB_BASE_URL``) accepts a connection
    within ``timeout`` seconds; W&B's own client would retry for about a minute."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname or "api.wandb.ai", port), timeout=timeout).close()
    except OSError as exc:
        raise GanlabError(f"cannot reach W&B at {url.scheme}://{url.netloc} "
                          f"({exc.strerror or exc}): no network?") from exc


def wandb_api() -> Any:
    """``wandb.Api()`` with short timeouts; one line when it cannot start."""
    import wandb

    try:
        return wandb.Api(timeout=20)
    except Exception as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise GanlabError(f"cannot reach W&B ({text})") from exc


def read_wandb_sweep(path: str, sweep: str) -> Sweep:
    """The runs of W&B group ``sweep`` in ``entity/project``, as a :class:`Sweep` (final
    metrics from the summaries' ``val/*``, curves from the histories; samples stay in W&B)."""
    from ganlab.adapter.loggers import resolve_wandb_mode

    if resolve_wandb_mode("auto") != "online":
        raise GanlabError(f"reading {path} needs W&B online (WANDB_MODE, or no API key: "
                          "`wandb login`); give a multirun directory to work offline")
    check_reachable()
    try:
        found = list(wandb_api().runs(path, filters={"group": sweep}))
    except GanlabError:
        raise
    except Exception as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise GanlabError(f"cannot read runs of {path} from W&B ({text})") from exc
    runs = []
    for found_run in found:
        config = dict(found_run.config)
        keys = [k for k, v in found_run.summary.items()
                if k.startswith(("val/", "train/")) and is_number(v)]
        curves: dict[str, dict[int, float]] = {k: {} for k in keys}
        for row in found_run.scan_history(keys=["iteration", *keys]):
            for key in keys:
                if is_number(row.get(key)) and is_number(row.get("iteration")):
                    curves[key][int(row["iteration"])] = float(row[key])
        final = {k[4:]: v for k, v in found_run.summary.items()
                 if k.startswith("val/") and is_number(v)}
        runs.append(Run(path=Path(found_run.id), overrides=[],
                        variant=str(config.get("variant") or found_run.job_type or "?"),
                        seed=config.get("seed"), final=final,
                        curves={k: v for k, v in curves.items() if v}, pictures={},
                        config=config, sweep=sweep))
    if not runs:
        raise GanlabError(f"no run of group {sweep!r} in {path}")
    by_key: dict[str, list[Run]] = {}
    for run in runs:
        by_key.setdefault(run.variant, []).append(run)
    names = labels(list(by_key))
    variants = {names[k]: sorted(v, key=lambda r: r.seed or 0) for k, v in by_key.items()}
    return Sweep(root=Path.cwd(), id=sweep, runs=runs, variants=variants)


# -- the same view offline ------------------------------------------------------------------


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
section { margin-bottom: 2em; }
.panels { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; border: 1px solid #ddd; padding: 6px; }
figure img { max-width: 460px; display: block; }
figcaption { font-size: 0.8em; color: #555; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
td img { max-width: 300px; display: block; }
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_table(header: list[str], rows: list[list[str]], table_id: str,
               row_attr: str | None = None) -> str:
    """An HTML table; ``row_attr`` names a ``data-`` attribute set to each row's first cell."""
    e = html.escape
    out = [f'<table id="{table_id}"><thead><tr>'
           + "".join(f"<th>{e(str(h))}</th>" for h in header) + "</tr></thead><tbody>"]
    for row in rows:
        attr = f' data-{row_attr}="{e(str(row[0]))}"' if row_attr else ""
        out.append(f"<tr{attr}>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
    return "".join(out) + "</tbody></table>"


def render_html(sweep: Sweep) -> str:
    """The dashboard as one self-contained HTML page (no file or network it depends on)."""
    from ganlab.app.sweep_plots import metric_png, parallel_png

    e = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
             f"<title>ganlab sweep {e(sweep.id)}</title><style>{STYLE}</style></head><body>",
             f"<h1>ganlab sweep {e(sweep.id)}</h1>",
             f"<p>{len(sweep.runs)} runs in {e(str(sweep.root))}; W&amp;B group "
             f"<code>{e(sweep.id)}</code>, one line per variant (W&amp;B job type) with its "
             "± sample-std band over seeds.</p>"]
    run_rows = [[label, str(r.seed), r.variant, str(r.path)]
                for label, runs in sweep.variants.items() for r in runs]
    parts += ['<section id="variants"><h2>Variants</h2>',
              html_table(["variant", "seed", "overrides (without seed)", "run"], run_rows,
                         "variant-table", row_attr="variant"), "</section>"]
    parts.append('<section id="curves"><h2>Curves</h2><div class="panels">')
    for key in sweep.curve_keys():
        parts.append(f'<figure class="panel" data-metric="{e(key)}">'
                     f'<img alt="{e(key)}" src="{data_uri(metric_png(sweep, key))}">'
                     f"<figcaption>{e(key)}: mean ± std over seeds</figcaption></figure>")
    parts.append("</div></section>")
    parts += ['<section id="final"><h2>Final metrics: mean ± std over seeds</h2>',
              html_table(*sweep.table(), "final-table", row_attr="variant"), "</section>"]
    parts.append('<section id="samples"><h2>Samples at the last iteration</h2>'
                 '<table id="samples-table"><thead><tr><th>picture</th>'
                 + "".join(f'<th data-variant="{e(v)}">{e(v)}</th>' for v in sweep.variants)
                 + "</tr></thead><tbody>")
    for name in sweep.picture_names():
        parts.append(f'<tr data-picture="{e(name)}"><td>{e(name)}</td>')
        for label, runs in sweep.variants.items():
            run = next((r for r in runs if name in r.pictures), None)
            if run is None:
                parts.append("<td>-</td>")
                continue
            png = run.pictures[name]
            step = png.stem.rpartition("_")[2].lstrip("0") or "0"
            parts.append(f'<td data-variant="{e(label)}"><img class="sample" alt="{e(name)}" '
                         f'src="{data_uri(png.read_bytes())}">seed {run.seed}, '
                         f"iteration {step}</td>")
        parts.append("</tr>")
    parts.append("</tbody></table></section>")
    parts += ['<section id="protocol"><h2>Protocol</h2>',
              html_table(["field", "value"], [list(r) for r in sweep.protocol()],
                         "protocol-table"), "</section>"]
    parallel = parallel_png(sweep)
    if parallel is not None:
        parts.append('<section id="search"><h2>Search</h2><figure class="panel" '
                     'data-metric="parallel-coordinates">'
                     f'<img alt="parallel coordinates" src="{data_uri(parallel)}"></figure>'
                     "</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(sweep: Sweep, path: Path) -> Path:
    """Write :func:`render_html` to ``path`` (atomically); returns it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render_html(sweep), encoding="utf-8")
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("source", help="a multirun directory, or entity/project (with --sweep)")
    parser.add_argument("--sweep", default=None,
                        help="the sweep id (W&B group) when reading from W&B")
    parser.add_argument("--entity", default=os.environ.get("WANDB_ENTITY", ""),
                        help="W&B entity of the report (default: WANDB_ENTITY, else yours)")
    parser.add_argument("--project", default=None,
                        help="W&B project (default: the runs' logger.wandb.project)")
    parser.add_argument("--html", type=Path, default=None,
                        help=f"where to write the offline view (default: <source>/{HTML_NAME})")
    parser.add_argument("--publish", action="store_true", help="save the report to W&B")
    args = parser.parse_args(argv)
    try:
        run(args)
    except GanlabError as exc:
        print(f"ganlab: error: {exc}", file=sys.stderr)
        sys.exit(2)


def run(args: argparse.Namespace) -> None:
    source = Path(args.source)
    entity = args.entity
    if source.is_dir():
        sweep = read_sweep(source)
        if not sweep.runs:
            raise GanlabError(f"no run with a metrics.json under {source.resolve()}")
        html_path = args.html or source / HTML_NAME
    elif args.sweep and args.source.count("/") == 1:
        entity = entity or args.source.split("/")[0]
        args.project = args.project or args.source.split("/")[1]
        sweep = read_wandb_sweep(args.source, args.sweep)
        html_path = args.html or Path(f"dashboard-{args.sweep.replace('/', '_')}.html")
    else:
        raise GanlabError(f"no such directory: {source.resolve()} (or give entity/project "
                          "and --sweep <id> to read from W&B)")
    project = args.project or sweep.project
    report = build_report(sweep, entity, project)
    from ganlab.app.compare import format_table

    for line in format_table(*sweep.table()):
        print(line)
    print(f"\nganlab: sweep {sweep.id}: {len(sweep.runs)} runs, {len(sweep.variants)} variants; "
          f"report: {len(sweep.curve_keys())} curve panels, "
          f"{len(sweep.picture_names())} sample panels")
    print(f"ganlab: offline view: {write_html(sweep, html_path)}")
    if args.publish:
        print(f"ganlab: published: {publish(report)}")
    else:
        print(f"ganlab: publish it to W&B project {project} with --publish "
              "(after `wandb sync` of the runs)")


if __name__ == "__main__":
    main()
