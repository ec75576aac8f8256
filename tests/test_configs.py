"""The config tree: every option composes, every loss and preset runs a short CPU run."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from data.test_images import write_mnist
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ganlab.app.build import build_module
from ganlab.app.cli import config_dir
from ganlab.app.train import train
from ganlab.core.plugin import Plugin
from ganlab.data.base import GANDataModule

CONF = Path(config_dir())


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_groups_mirror_the_code() -> None:
    assert options("loss") == ["fgan_hellinger", "fgan_js", "fgan_kl", "fgan_pearson",
                               "fgan_reverse_kl", "hinge", "lsgan", "minimax", "ml_game",
                               "non_saturating", "wgan", "wgan_gp"]
    assert set(options("data")) >= {"cifar10", "fashion_mnist", "gaussian_1d", "image_folder",
                                    "mnist", "mnist_offline", "stacked_mnist",
                                    "stacked_mnist_offline", "toy_grid", "toy_ring"}
    for name in options("data"):  # each a datamodule of the lab
        target = OmegaConf.load(CONF / "data" / f"{name}.yaml")["_target_"]
        module, _, attr = target.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), attr), GANDataModule), name
    assert options("conditioning") == ["auxiliary", "bigan", "concat", "infogan", "projection",
                                       "semi_supervised"]
    assert options("extractor") == ["classifier", "inception"]
    assert options("generator") == options("discriminator") == ["dcgan", "mlp", "resnet"]
    assert set(options("experiment")) >= {"vanilla_ring", "vanilla_grid", "figure1_1d",
                                          "dcgan_mnist", "dcgan_mnist_offline", "dcgan_cifar10"}
    for group in ("tricks", "optim", "trainer", "logger", "callbacks", "paths", "hparams_search"):
        assert (CONF / group).is_dir(), group


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes(make_cfg, experiment: str) -> None:
    cfg = make_cfg(f"experiment={experiment}")
    assert cfg.name == experiment
    assert cfg.train.iterations > 0


@pytest.mark.parametrize("name", options("tricks"))
def test_every_trick_config_builds_its_trick(name: str) -> None:
    path = CONF / "tricks" / f"{name}.yaml"
    assert path.read_text().splitlines()[0] == f"# @package tricks.{name}"
    trick = instantiate(OmegaConf.load(path))
    assert isinstance(trick, Plugin)
    assert trick.name == name
    # each trick is its own module: a trick, or a regulariser usable as one
    assert trick.__doc__ and type(trick).__module__ in (f"ganlab.tricks.{name}",
                                                        f"ganlab.regularisers.{name}")


@pytest.mark.parametrize("loss", options("loss"))
def test_every_loss_trains(make_cfg, tmp_path, loss: str) -> None:
    metrics = train(make_cfg(f"loss={loss}", "train.iterations=4", "metrics.every_n_iterations=0"))
    assert metrics["iterations"] == 4


@pytest.mark.parametrize("experiment", ["vanilla_ring", "vanilla_grid", "figure1_1d"])
def test_toy_presets_run(make_cfg, tmp_path, experiment: str) -> None:
    metrics = train(make_cfg(f"experiment={experiment}", "train.iterations=6",
                             "metrics.every_n_iterations=3"))
    assert metrics["iterations"] == 6
    pictures = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    kind = "figure1" if experiment == "figure1_1d" else "scatter"
    assert pictures == [f"{kind}_0000003.png", f"{kind}_0000006.png"]


def test_dcgan_mnist_offline_runs(make_cfg, tmp_path, classifiers) -> None:
    metrics = train(make_cfg("experiment=dcgan_mnist_offline", "train.iterations=3",
                             "train.batch_size=8", "metrics.every_n_iterations=0"))
    image_metrics = {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"}
    assert set(metrics) == {"iterations", "num_samples", "best_fid", "best_fid_iteration",
                            *image_metrics}
    assert (metrics["iterations"], metrics["num_samples"]) == (3, 200)
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["protocol"]["extractor"] == "classifier"
    assert written["protocol"]["num_generated"] == 200
    assert {k: v for k, v in written.items() if k != "protocol"} == metrics
    assert (tmp_path / "run" / "samples" / "samples_0000003.png").is_file()


def test_dcgan_mnist_runs_on_idx_files(make_cfg, tmp_path) -> None:
    write_mnist(tmp_path / "data")
    metrics = train(make_cfg("experiment=dcgan_mnist", f"paths.data_dir={tmp_path / 'data'}",
                             "train.iterations=2", "train.batch_size=4",
                             "generator.net.base_width=8", "discriminator.net.base_width=8",
                             "metrics.every_n_iterations=0"))
    assert metrics["iterations"] == 2


@pytest.mark.parametrize(("generator", "discriminator"), [("dcgan", "dcgan"), ("mlp", "dcgan"),
                                                          ("dcgan", "mlp")])
def test_dcgan_cifar10_networks_fit_32x32x3(make_cfg, generator, discriminator) -> None:
    cfg = make_cfg("experiment=dcgan_cifar10", f"generator={generator}",
                   f"discriminator={discriminator}", "generator.net.base_width=8" if
                   generator == "dcgan" else "generator.net.hidden_dim=8")

    class FakeCifar:
        data_shape = (3, 32, 32)

    module = build_module(cfg, FakeCifar())
    assert module.generate(2, seed=0).shape == (2, 3, 32, 32)


@pytest.mark.parametrize(("data_shape", "last"), [((2,), "Linear"), ((1, 28, 28), "Tanh")])
def test_mlp_generator_output_is_tanh_for_images_only(make_cfg, data_shape, last: str) -> None:
    class Data:
        pass

    data = Data()
    data.data_shape = data_shape
    module = build_module(make_cfg(), data)
    assert type(list(module.generator.modules())[-1]).__name__ == last
