"""A preset that needs the lab classifier trains it on first use, before Lightning starts,
exactly as ganlab-train-classifier would, and says so in one line."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config
from omegaconf import OmegaConf

from ganlab.app import first_use

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_the_config_is_ganlab_train_classifiers(make_cfg, tmp_path) -> None:
    out = tmp_path / "classifiers" / "mnist_offline.pt"
    run = make_cfg("experiment=dcgan_mnist_offline", f"paths.data_dir={tmp_path}", "seed=7",
                   "train.batch_size=16")
    ours = OmegaConf.to_container(first_use.classifier_config(run, out), resolve=True)
    cli = compose_config(["data=mnist_offline", f"paths.data_dir={tmp_path}",
                          f"classifier.out={out}"], tmp_path / "c", config_name="train_classifier")
    theirs = OmegaConf.to_container(cli, resolve=True)
    for key in ("seed", "classifier", "data", "train"):
        assert ours[key] == theirs[key]
    assert ours["paths"]["data_dir"] == theirs["paths"]["data_dir"] == str(tmp_path)
    assert ours["data"]["seed"] == 0  # the classifier's seed, not the run's 7


def test_a_classifier_preset_trains_the_classifier_first(make_cfg, tmp_path, monkeypatch,
                                                         capsys) -> None:
    pytest.importorskip("mlxtend")
    from ganlab.app.train import train

    real_config = first_use.classifier_config

    def quick(cfg, out, data_name=None):  # the real training, cut to 5 steps for the test's time
        return OmegaConf.merge(real_config(cfg, out, data_name), {"classifier": {"max_steps": 5}})

    monkeypatch.setattr(first_use, "classifier_config", quick)
    cfg = make_cfg("experiment=dcgan_mnist_offline", f"paths.data_dir={tmp_path}",
                   "train.iterations=1", "train.batch_size=4", "metrics.every_n_iterations=0",
                   "metrics.num_samples=20", "metrics.kid_subset_size=10",
                   "generator.net.base_width=8", "discriminator.net.base_width=8")
    metrics = train(cfg)
    lines = capsys.readouterr().out.splitlines()
    path = tmp_path / "classifiers" / "mnist_offline.pt"
    assert lines[0] == ("ganlab: no classifier for data=mnist_offline yet: training it first "
                        f"(as ganlab-train-classifier data=mnist_offline), kept at {path}")
    assert lines[1].startswith("ganlab: classifier test accuracy = ")
    assert lines[1].endswith(" s)") and "(1000 test images, " in lines[1]
    assert not any("classifier epoch" in line for line in lines)
    saved = torch.load(path, weights_only=True)
    assert saved["data"] == "mnist_offline" and saved["config"]["classifier"]["max_steps"] == 5
    assert "fid" in metrics  # the run measured with it
    # the second run finds it: no training, no line; and it is the same run (training the
    # classifier left the seeded random state as it was)
    again = train(cfg)
    assert "no classifier" not in capsys.readouterr().out
    assert again["fid"] == metrics["fid"]


def test_another_datas_default_classifier_is_made_from_its_config(make_cfg, tmp_path,
                                                                 monkeypatch, capsys) -> None:
    trained = []
    monkeypatch.setattr("ganlab.metrics.classifier.train_classifier",
                        lambda c: trained.append(c) or {"test_accuracy": 0.5, "num_test": 3,
                                                        "seconds": 1.0})
    path = tmp_path / "classifiers" / "mnist_offline.pt"
    cfg = make_cfg("data=toy_grid", f"paths.data_dir={tmp_path}", "extractor=classifier",
                   f"extractor.path={path}")
    assert first_use.default_classifier_data(cfg, path) == "mnist_offline"
    first_use.ensure_classifier(cfg, None)  # the run's own data are not looked at
    assert len(trained) == 1
    made = OmegaConf.to_container(trained[0], resolve=True)
    assert made["data"]["_target_"] == "ganlab.data.images.MNISTOffline"
    assert made["classifier"]["out"] == str(path)
    assert made["classifier"]["data_name"] == "mnist_offline"  # recorded in the file
    assert capsys.readouterr().out.splitlines()[0] == (
        "ganlab: no classifier for data=mnist_offline yet: training it first (as "
        f"ganlab-train-classifier data=mnist_offline), kept at {path}")
    # Control: once the file exists nothing is trained.
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    first_use.ensure_classifier(cfg, None)
    assert len(trained) == 1


def test_a_users_own_classifier_path_is_not_made(make_cfg, tmp_path, monkeypatch) -> None:
    called = []
    monkeypatch.setattr("ganlab.metrics.classifier.train_classifier", called.append)
    cfg = make_cfg("experiment=dcgan_mnist_offline", f"paths.data_dir={tmp_path}",
                   f"extractor.path={tmp_path / 'mine.pt'}")
    first_use.ensure_classifier(cfg, None)  # returns before it looks at the data
    assert called == []
    assert first_use.classifier_paths(cfg) == [tmp_path / "mine.pt"]


def test_a_model_familys_classifier_is_made_on_first_use(make_cfg, tmp_path, monkeypatch
                                                         ) -> None:
    trained = []
    monkeypatch.setattr("ganlab.metrics.classifier.train_classifier",
                        lambda c: trained.append(c) or {"test_accuracy": 0.5, "num_test": 3,
                                                        "seconds": 1.0})
    cfg = make_cfg("experiment=srresnet_mnist_offline", f"paths.data_dir={tmp_path}")
    path = tmp_path / "classifiers" / "mnist_offline.pt"
    assert first_use.classifier_paths(cfg) == [path]  # model.classifier, no extractor
    first_use.ensure_classifier(cfg, None)
    assert len(trained) == 1
    made = OmegaConf.to_container(trained[0], resolve=True)
    assert made["data"]["_target_"] == "ganlab.data.images.MNISTOffline"
    assert made["classifier"]["out"] == str(path)
    # Control: a family without model.classifier reads none.
    assert first_use.classifier_paths(make_cfg("model=aae", "data=mnist_offline")) == []
