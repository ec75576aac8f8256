"""ganlab-dashboard and the sweep's grouping, on a real tiny multirun (run once per module):
what each W&B run carries, the report's sections, panels and grouping, ganlab-compare's
labels and bands, the publish path offline, and the offline HTML in headless Chromium."""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from wandb_helpers import run_info

from ganlab.app import compare, dashboard
from ganlab.app.sweep import read_sweep, variant_key

LOSSES = ("non_saturating", "lsgan")
SWEEP = ["-m", f"loss={','.join(LOSSES)}", "seed=0,1", "train.iterations=20",
         "metrics.every_n_iterations=10", "metrics.num_samples=200", "train.batch_size=32",
         "train.log_every_n_iterations=5", "trainer=cpu", "trainer.enable_progress_bar=false",
         "~callbacks.progress_bar"]
#: The scalars the issue asks a panel for (toy data: no FID/KID/IS/PR).
REQUIRED_PANELS = {"val/modes_covered", "val/hq_fraction", "val/reverse_kl", "train/d_loss",
                   "train/g_loss", "train/D_x", "train/D_G_z"}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ganlab-train -m loss=non_saturating,lsgan seed=0,1`` (20 iterations), W&B offline."""
    root = tmp_path_factory.mktemp("sweeps") / "tiny"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
               [str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "ganlab.app.train", *SWEEP,
                           f"hydra.sweep.dir={root}"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def job_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / "metrics.json").is_file())


def overrides(run: Path) -> list[str]:
    return [str(o) for o in OmegaConf.load(run / ".hydra" / "overrides.yaml")]


def test_each_wandb_run_carries_variant_sweep_and_seed(sweep_dir: Path) -> None:
    runs = job_dirs(sweep_dir)
    assert len(runs) == 4
    seen = set()
    for run in runs:
        (wandb_dir,) = (run / "wandb").glob("offline-run-*")
        info = run_info(wandb_dir)
        own = overrides(run)
        loss = next(o for o in own if o.startswith("loss="))
        seed = int(next(o for o in own if o.startswith("seed=")).split("=")[1])
        # Group: the sweep (<name>/<multirun folder>), not just `name`.
        assert info["group"] == f"default/{sweep_dir.name}"
        # Job type: the swept values without the seed; the variant: all overrides but seed.
        assert info["job_type"] == loss
        assert info["config"]["variant"] == " ".join(sorted(o for o in own
                                                           if not o.startswith("seed=")))
        assert info["config"]["sweep"] == info["group"]
        assert info["config"]["seed"] == seed
        seen.add((loss, seed))
    assert seen == {(f"loss={loss}", s) for loss in LOSSES for s in (0, 1)}


def test_a_resumed_run_keeps_its_group_and_variant(sweep_dir, tmp_path, make_cfg) -> None:
    import wandb

    from ganlab.app.train import train

    source = job_dirs(sweep_dir)[0]
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    (wandb_dir,) = (source / "wandb").glob("offline-run-*")
    before = run_info(wandb_dir)
    # Outside a multirun, and with a new override: only the stored identity can give these.
    cfg = make_cfg("logger=wandb", "train.iterations=25", "metrics.every_n_iterations=0",
                   f"ckpt_path={copy / 'checkpoints' / 'last.ckpt'}", out=copy)
    try:
        train(cfg)
        run = wandb.run
        assert run.id == before["id"]
        assert (run.group, run.job_type) == (before["group"], before["job_type"])
        for key in ("variant", "sweep", "seed"):
            assert run.config[key] == before["config"][key], key
    finally:
        wandb.finish()
    # The training curves continue in csv/metrics.csv (Lightning's CSVLogger deletes it).
    with open(source / "csv" / "metrics.csv") as a, open(copy / "csv" / "metrics.csv") as b:
        old, new = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert [r["step"] for r in new if r["train/d_loss"]] == ["5", "10", "15", "20", "25"]
    assert [r["train/d_loss"] for r in new[:len(old)]] == [r["train/d_loss"] for r in old]


def expected_curve_keys(run: Path) -> set[str]:
    """The W&B keys a run logged, read from its files without ganlab's code."""
    keys = set()
    for line in (run / "metrics_history.jsonl").read_text().splitlines():
        keys |= {f"val/{k}" for k in json.loads(line)
                 if k not in ("iterations", "num_samples", "num_modes")}
    with open(run / "csv" / "metrics.csv") as handle:
        keys |= {k for k in next(csv.reader(handle)) if k.startswith("train/")}
    return keys


def hand_table(sweep_dir: Path) -> dict[str, dict[str, str]]:
    """variant label → metric → "mean ± std" computed with ``statistics`` from metrics.json."""
    finals: dict[str, list[dict]] = {}
    for run in job_dirs(sweep_dir):
        label = next(o for o in overrides(run) if o.startswith("loss="))
        finals.setdefault(label, []).append(json.loads((run / "metrics.json").read_text()))
    out = {}
    for label, rows in finals.items():
        out[label] = {}
        for name in ("hq_fraction", "modes_covered", "reverse_kl"):
            values = [float(r[name]) for r in rows]
            if all(np.isfinite(values)):
                text = f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"
            else:
                text = f"{np.mean(values):.4g} ± nan"
            out[label][name] = text
    return out


def test_compare_names_variants_by_what_differs(sweep_dir: Path, capsys) -> None:
    compare.main([str(sweep_dir)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["variant", "runs", "hq_fraction", "modes_covered",
                                "reverse_kl"]
    hand = hand_table(sweep_dir)
    rows = {line.split()[0]: line for line in lines[1:3]}
    assert set(rows) == {"loss=lsgan", "loss=non_saturating"}  # nothing common is shown
    for label, metrics in hand.items():
        cells = [c.strip() for c in rows[label].split("  ") if c.strip()]
        assert cells == [label, "2", *metrics.values()]
    assert (sweep_dir / "compare.png").is_file()


def test_compare_bands_are_mean_and_std_over_seeds(sweep_dir: Path) -> None:
    from ganlab.app.sweep_plots import curves_figure

    sweep = read_sweep(sweep_dir)
    fig = curves_figure(sweep, ["train/d_loss"])
    ax = fig.axes[0]
    for index, (label, runs) in enumerate(sweep.variants.items()):
        assert ax.get_lines()[index].get_label() == label
        columns = []
        for run in runs:
            with open(run.path / "csv" / "metrics.csv") as handle:
                columns.append({int(r["step"]): float(r["train/d_loss"])
                                for r in csv.DictReader(handle) if r["train/d_loss"]})
        steps = sorted(columns[0])
        values = np.array([[c[s] for s in steps] for c in columns])
        mean, std = values.mean(0), values.std(0, ddof=1)
        np.testing.assert_allclose(ax.get_lines()[index].get_ydata(), mean, rtol=1e-12)
        band = ax.collections[index].get_paths()[0].vertices
        top = {x: y for x, y in band if np.isclose(y, mean[steps.index(int(round(x)))]
                                                   + std[steps.index(int(round(x)))])}
        assert sorted(round(x) for x in top) == steps  # the band's upper edge: mean + std


def test_report_sections_panels_and_grouping(sweep_dir: Path) -> None:
    import wandb_workspaces.reports.v2 as wr

    sweep = read_sweep(sweep_dir)
    report = dashboard.build_report(sweep, "someone", "ganlab")
    assert report.title == f"ganlab sweep default/{sweep_dir.name}"
    headings = [b.text for b in report.blocks if isinstance(b, wr.H2)]
    assert headings == ["Curves", "Final metrics: mean ± std over seeds",
                        "Samples at the last iteration", "Protocol"]
    grids = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    for grid in grids:  # the sweep's runs, one group per variant
        (runset,) = grid.runsets
        assert (runset.entity, runset.project) == ("someone", "ganlab")
        assert runset.filters == f"Group = 'default/{sweep_dir.name}'"
        assert runset.groupby == ["JobType"]
    curves, samples = grids
    expected = set.union(*(expected_curve_keys(r) for r in job_dirs(sweep_dir)))
    assert REQUIRED_PANELS <= expected
    assert all(isinstance(p, wr.LinePlot) for p in curves.panels)
    assert sorted(key for p in curves.panels for key in p.y) == sorted(expected)
    for panel in curves.panels:
        assert (panel.x, panel.groupby_aggfunc, panel.groupby_rangefunc) == \
            ("iteration", "mean", "stddev")
    assert [p.media_keys for p in samples.panels] == [["samples/scatter"]]
    tables = [b.text for b in report.blocks if isinstance(b, wr.MarkdownBlock)]
    final = tables[0].splitlines()
    assert final[0] == "| variant | runs | hq_fraction | modes_covered | reverse_kl |"
    for label, metrics in hand_table(sweep_dir).items():
        assert f"| {label} | 2 | " + " | ".join(metrics.values()) + " |" in final
    assert "| metrics.num_samples | 200 |" in tables[1].splitlines()
    assert "| train.iterations | 20 |" in tables[1].splitlines()
    assert not any(isinstance(p, wr.ParallelCoordinatesPlot) for g in grids for p in g.panels)


def test_optuna_study_gets_parallel_coordinates(tmp_path: Path) -> None:
    import wandb_workspaces.reports.v2 as wr

    from ganlab.app.sweep_plots import parallel_png

    params = {"optim.generator.lr": "tag(log, interval(1e-4, 3e-3))",
              "train.d_steps": "range(1, 4)"}
    for job, (lr, steps, kl) in enumerate([(1e-3, 1, 0.5), (2e-4, 3, 0.9)]):
        run = tmp_path / str(job)
        (run / ".hydra").mkdir(parents=True)
        own = [f"optim.generator.lr={lr}", f"train.d_steps={steps}", "+hparams_search=x"]
        (run / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(own))
        (run / ".hydra" / "hydra.yaml").write_text(OmegaConf.to_yaml({"hydra": {"sweeper": {
            "_target_": "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
            "params": params}}}))
        (run / "metrics.json").write_text(json.dumps({"iterations": 10, "reverse_kl": kl}))
    sweep = read_sweep(tmp_path)
    assert list(sweep.variants) == ["optim.generator.lr=0.0002 train.d_steps=3",
                                    "optim.generator.lr=0.001 train.d_steps=1"]
    report = dashboard.build_report(sweep, "someone", "ganlab")
    assert [b.text for b in report.blocks if isinstance(b, wr.H2)][-1] == "Search"
    (panel,) = report.blocks[-1].panels
    assert isinstance(panel, wr.ParallelCoordinatesPlot)
    assert [c.metric for c in panel.columns] == [wr.Config("optim.generator.lr"),
                                                 wr.Config("train.d_steps"),
                                                 wr.SummaryMetric("val/reverse_kl")]
    assert report.blocks[-1].runsets[0].groupby == []  # one line per trial
    assert parallel_png(sweep)[:8] == b"\x89PNG\r\n\x1a\n"


def test_variant_key_is_stable_and_leaves_out_seed() -> None:
    assert variant_key(["seed=3", "loss=hinge", "hydra.run.dir=x", "data=toy_ring",
                        "resume=d", "ckpt_path=c", "logger=csv", "paths.data_dir=p"]) == \
        "data=toy_ring loss=hinge"
    assert variant_key(["seed=1"]) == "(defaults)"


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "NETRC"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("setting", ["WANDB_MODE=offline", "no credentials",
                                     "no server"])
def test_publish_without_network_is_one_line(sweep_dir, tmp_path, capsys, monkeypatch,
                                             no_credentials, setting) -> None:
    if setting == "WANDB_MODE=offline":
        monkeypatch.setenv("WANDB_MODE", "offline")
    elif setting == "no server":  # a key, and a server that refuses the connection
        monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
        monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    html = tmp_path / "view.html"
    with pytest.raises(SystemExit) as info:
        dashboard.main([str(sweep_dir), "--publish", "--html", str(html)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    if setting == "no server":
        assert err[0] == "ganlab: error: cannot reach W&B at http://127.0.0.1:9 " \
                         "(Connection refused): no network?"
    else:
        assert err[0].startswith("ganlab: error: --publish needs W&B online, and W&B is "
                                 "offline here")
    assert html.is_file()  # the offline view is written before publishing


def test_wandb_source_offline_is_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        dashboard.main(["someone/ganlab", "--sweep", "default/x"])
    assert info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ganlab: error: reading someone/ganlab needs W&B online")


def chromium() -> tuple[str, str]:
    """Paths of Debian's chromium and chromedriver; skips the test without them."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("chromium/chromedriver not installed (apt-get install chromium "
                    "chromium-driver; make browser)")
    return browser, driver


def artifacts_dir() -> Path:
    folder = Path(os.environ.get("GANLAB_TEST_ARTIFACTS",
                                 Path(__file__).parents[2] / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_offline_view_in_headless_chromium(sweep_dir: Path, capsys) -> None:
    browser, driver_path = chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    dashboard.main([str(sweep_dir)])
    page = sweep_dir / dashboard.HTML_NAME
    assert f"ganlab: offline view: {page}" in capsys.readouterr().out
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1300,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(page.as_uri())
        assert driver.title == f"ganlab sweep default/{sweep_dir.name}"
        variants = {"loss=lsgan", "loss=non_saturating"}
        final = driver.find_elements(By.CSS_SELECTOR, "#final-table tbody tr")
        assert {row.get_attribute("data-variant") for row in final} == variants
        hand = hand_table(sweep_dir)
        for row in final:
            cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
            label = row.get_attribute("data-variant")
            assert cells == [label, "2", *hand[label].values()]
        panels = driver.find_elements(By.CSS_SELECTOR, "#curves figure.panel")
        expected = set.union(*(expected_curve_keys(r) for r in job_dirs(sweep_dir)))
        assert sorted(p.get_attribute("data-metric") for p in panels) == sorted(expected)
        samples = driver.find_elements(By.CSS_SELECTOR,
                                       "#samples-table tr[data-picture='scatter'] td img")
        assert len(samples) == 2
        protocol = {r.find_elements(By.TAG_NAME, "td")[0].text:
                    r.find_elements(By.TAG_NAME, "td")[1].text
                    for r in driver.find_elements(By.CSS_SELECTOR, "#protocol-table tbody tr")}
        assert protocol["metrics.num_samples"] == "200"
        # Every picture is embedded (no other file, no network) and decoded by the browser.
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.src.slice(0, 22), i.naturalWidth])")
        assert len(images) == len(expected) + 2
        assert all(src == "data:image/png;base64," and width > 0 for src, width in images)
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1300, height + 50)
        shot = artifacts_dir() / "dashboard.png"
        assert driver.save_screenshot(str(shot))
    finally:
        driver.quit()
    with capsys.disabled():
        print(f"\nganlab: dashboard screenshot: {shot}")
