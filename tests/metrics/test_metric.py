"""The metric interface (src/ganlab/metrics/metric.py) and the ``metrics`` config group."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ganlab.app.cli import config_dir
from ganlab.app.train import train
from ganlab.core.seeds import EVAL_SEED
from ganlab.metrics.metric import Evaluation, Metric, run_providers

OPTIONS = sorted(p.stem for p in (Path(config_dir()) / "metrics").glob("*.yaml"))


@pytest.mark.parametrize("name", OPTIONS)
def test_every_metric_config_builds_its_metric(name: str) -> None:
    path = Path(config_dir()) / "metrics" / f"{name}.yaml"
    assert path.read_text().splitlines()[0] == f"# @package metrics.use.{name}"
    metric = instantiate(OmegaConf.load(path))
    assert isinstance(metric, Metric) and metric.name == name
    assert type(metric).__doc__


def test_the_evaluations_samples_are_drawn_once_and_shared() -> None:
    calls = []

    def generate(n: int, seed: int) -> torch.Tensor:
        calls.append((n, seed))
        return torch.randn(n, 2)

    ev = Evaluation(SimpleNamespace(generate=generate), None, 7)
    first = ev.samples()
    assert ev.samples() is first and calls == [(7, EVAL_SEED)]


def test_a_metric_applies_only_when_the_run_provides_its_needs() -> None:
    class Needy(Metric):
        needs = frozenset({"data.labels"})

    labelled = SimpleNamespace(num_classes=10, data_shape=(2,))
    unlabelled = SimpleNamespace(num_classes=None, data_shape=(2,))
    model = SimpleNamespace(family=None)
    assert Needy().applies(Evaluation(model, labelled, 1, run_providers(model, labelled)))
    assert not Needy().applies(Evaluation(model, unlabelled, 1, run_providers(model, unlabelled)))


def test_the_config_group_chooses_the_metrics_of_a_run(make_cfg) -> None:
    quick = ["train.iterations=2", "metrics.every_n_iterations=0", "experiment=cgan_toy_grid"]
    every = train(make_cfg(*quick))
    assert {"modes_covered", "class_accuracy"} <= set(every)
    only = train(make_cfg(*quick, "metrics=[class_metrics]"))
    assert "class_accuracy" in only and "modes_covered" not in only
    assert only["class_accuracy"] == every["class_accuracy"]
