"""Class conditioning (concat, projection, auxiliary) against hand computations, and its
metrics, pictures, errors and exact resume (``src/ganlab/conditioning``)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from nets_helpers import LinearCritic
from plugin_helpers import dstep, gstep, setup
from torch import nn
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.conditioning.auxiliary import (
    AuxiliaryClassifierDiscriminator,
    acgan_d_class_cost,
    acgan_g_class_cost,
)
from ganlab.conditioning.base import concat_condition, concat_shape
from ganlab.conditioning.concat import Concat
from ganlab.conditioning.projection import ProjectionDiscriminator
from ganlab.core.errors import GanlabError
from ganlab.metrics.conditional import accuracy_per_class, intra_class_fid, nearest_mode
from ganlab.nets.dcgan import DCGANDiscriminator
from ganlab.nets.mlp import MLPDiscriminator

CLASS_KINDS = ["concat", "projection", "auxiliary"]


# -- formulas ------------------------------------------------------------------------------


def test_concat_appends_one_hot_channels_and_features() -> None:
    img = torch.zeros(2, 1, 4, 4)
    out = concat_condition(img, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    assert out.shape == (2, 4, 4, 4)
    assert torch.equal(out[0, 2], torch.ones(4, 4)) and torch.equal(out[0, 1], torch.zeros(4, 4))
    assert torch.equal(out[1, 1], torch.ones(4, 4)) and out[1, 2:].abs().sum() == 0
    vec = torch.tensor([[5.0, 6.0]])
    assert torch.equal(concat_condition(vec, torch.tensor([[0.0, 1.0]])),
                       torch.tensor([[5.0, 6.0, 0.0, 1.0]]))
    assert concat_shape((1, 28, 28), 10) == (11, 28, 28)
    assert concat_shape((2,), 25) == (27,)


@pytest.mark.parametrize("net", ["mlp", "dcgan"])
def test_concat_discriminator_shapes(net: str) -> None:
    cond = Concat()
    cond.bind(SimpleNamespace(num_classes=10))
    shape = (1, 28, 28)
    widened = cond.discriminator_shape(shape)
    base = MLPDiscriminator(widened, hidden_dim=8) if net == "mlp" else DCGANDiscriminator(
        widened, base_width=4)
    module = setup(cond, discriminator=base, data_capabilities=("data.labels",)).players
    logits, aux = cond.discriminate(module.discriminator, torch.zeros(3, *shape),
                                    torch.tensor([0, 4, 9]))
    assert logits.shape == (3,) and aux is None
    assert cond.code_dim == 10


def test_projection_output_by_hand() -> None:
    d = ProjectionDiscriminator(LinearCritic([1.0, -2.0], 0.5, dtype=torch.float32),
                                num_classes=3)
    with torch.no_grad():
        d.embed.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 3.0]]))
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    y = torch.tensor([2, 0])
    # psi(phi(x)) = w.x + b; y^T V phi(x) = V[y] . x
    # row 0: (1 - 4 + 0.5) + (2*1 + 3*2) = -2.5 + 8 = 5.5
    # row 1: (3 + 2 + 0.5) + (1*3 + 0) = 5.5 + 3 = 8.5
    assert_close(d(x, y), torch.tensor([5.5, 8.5]), atol=1e-6, rtol=0)


def test_acgan_class_costs_by_hand() -> None:
    real = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    fake = torch.tensor([[0.0, math.log(3.0)]])
    real_y, fake_y = torch.tensor([0, 1]), torch.tensor([1])
    # CE rows: -log(e^2/(e^2+1)) = log(1 + e^-2); -log(1/2) = log 2; -log(3/4) = log(4/3)
    ce_real = (math.log(1 + math.exp(-2.0)) + math.log(2.0)) / 2
    ce_fake = math.log(4.0 / 3.0)
    d = acgan_d_class_cost(real, real_y, fake, fake_y)
    g = acgan_g_class_cost(fake, fake_y)
    assert abs(float(d) - 0.5 * (ce_real + ce_fake)) <= 1e-6
    assert abs(float(g) - 0.5 * ce_fake) <= 1e-6


def test_acgan_module_costs_are_loss_plus_class_terms(make_cfg) -> None:
    cfg = make_cfg("conditioning=auxiliary", "conditioning.weight=2.0")
    module = build_module(cfg, build_datamodule(cfg))
    disc = module.discriminator
    assert isinstance(disc, AuxiliaryClassifierDiscriminator)
    real, fake = torch.randn(4, 2), torch.randn(4, 2)
    ry, fy = torch.tensor([0, 3, 7, 24]), torch.tensor([1, 1, 2, 5])
    (rl, ra), (fl, fa) = disc.outputs(real), disc.outputs(fake)
    step = dstep(rl, fl, real, fake)
    step.labels, step.real_condition, step.fake_condition = ry, ry, fy
    step.real_aux, step.fake_aux = ra, fa
    loss, cond = module.family.loss, module.family.conditioning
    base = loss.d_loss(rl, fl)
    got = cond.d_cost(base, step)
    assert_close(got, base + 2.0 * acgan_d_class_cost(ra, ry, fa, fy))
    g_step = gstep(real, fake, fl)
    g_step.fake_condition, g_step.fake_aux = fy, fa
    gbase = loss.g_loss(fl)
    # non-saturating G: -1/2 E log sigma(l_fake), plus w * 1/2 CE(fake)
    hand = 0.5 * torch.nn.functional.softplus(-fl).mean() + 2.0 * acgan_g_class_cost(fa, fy)
    assert_close(cond.g_cost(gbase, g_step), hand)


# -- codes and RNG order --------------------------------------------------------------------


def test_unconditional_draws_exactly_the_old_noise(make_cfg) -> None:
    cfg = make_cfg()
    module = build_module(cfg, build_datamodule(cfg))
    z = module.sample_z(7, torch.Generator().manual_seed(3))
    assert torch.equal(z, torch.randn(7, 2, generator=torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("kind", CLASS_KINDS)
def test_class_code_follows_z_and_is_uniform(make_cfg, kind: str) -> None:
    cfg = make_cfg(f"conditioning={kind}")
    module = build_module(cfg, build_datamodule(cfg))
    n = 25_000
    latent = module.sample_z(n, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(n, 2, generator=gen)
    y = torch.randint(25, (n,), generator=gen)
    assert latent.shape == (n, 2 + 25)
    assert torch.equal(latent[:, :2], z)  # z is drawn first, unchanged
    assert torch.equal(latent[:, 2:].argmax(1), y)
    assert torch.equal(latent[:, 2:].sum(1), torch.ones(n))
    assert torch.equal(module.family.fake_condition(latent), y)
    share = torch.bincount(y, minlength=25).float() / n
    assert float((share - 1 / 25).abs().max()) <= 0.01


# -- metrics --------------------------------------------------------------------------------


def test_accuracy_per_class_and_nearest_mode_by_hand() -> None:
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    points = torch.tensor([[0.1, 0.0], [9.0, 1.0], [4.0, 0.0], [6.0, 0.0]])
    assert nearest_mode(points, centers).tolist() == [0, 1, 0, 1]
    requested = torch.tensor([0, 0, 1, 1])
    acc = accuracy_per_class(nearest_mode(points, centers), requested, 2)
    assert acc == {"class_accuracy_0": 0.5, "class_accuracy_1": 0.5, "class_accuracy": 0.5}


def test_intra_class_fid_is_squared_mean_shift_per_class() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 3, generator=g, dtype=torch.float64)
    labels = torch.arange(2).repeat_interleave(200)
    shift = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 2.0]], dtype=torch.float64)
    fake = real + shift[labels]  # same covariance per class, mean moved by shift[k]
    got = intra_class_fid(fake, labels, real, labels, 2)
    assert abs(got["intra_class_fid_0"] - 1.0) <= 1e-8
    assert abs(got["intra_class_fid_1"] - 8.0) <= 1e-8
    assert abs(got["intra_class_fid"] - 4.5) <= 1e-8


def test_generate_classes_asks_for_the_requested_class(make_cfg) -> None:
    cfg = make_cfg("conditioning=concat")
    module = build_module(cfg, build_datamodule(cfg))
    players = module.family.players
    net = players.generator
    players.generator = nn.Sequential()  # identity: the output is G's input
    out = module.generate_classes(torch.tensor([3, 0, 24]), seed=1)
    players.generator = net
    assert out.shape == (3, 27)
    assert out[:, 2:].argmax(1).tolist() == [3, 0, 24]
    assert torch.equal(out[:, :2], torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))


# -- errors ---------------------------------------------------------------------------------


def test_unlabelled_data_is_refused() -> None:
    with pytest.raises(GanlabError, match=r"conditioning=concat needs labelled data"):
        Concat().bind(SimpleNamespace(num_classes=None))


@pytest.mark.parametrize("overrides", [
    ["conditioning=concat", "tricks=[r1,feature_matching]"],
    ["conditioning=projection", "loss=wgan_gp"],
    ["conditioning=auxiliary", "tricks=[minibatch_discrimination,spectral_norm]"],
])
def test_penalties_and_network_tricks_work_under_conditioning(make_cfg, overrides) -> None:
    """What used to be refused runs: hooks see D with its condition (step.critic)."""
    metrics = train(make_cfg(*overrides, "train.iterations=3", "metrics.every_n_iterations=0"))
    assert metrics["iterations"] == 3


def test_r1_under_concat_differentiates_the_conditioned_critic(make_cfg) -> None:
    """R1 = (gamma/2) E ||grad_x D(x, y)||^2 with each real sample's own label y: on a
    critic linear in x whose weight depends on y, ||grad||^2 = ||w_y||^2 per sample."""
    from ganlab.tricks.r1 import R1

    w = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    x = torch.randn(3, 2)
    y = torch.tensor([0, 1, 2])
    step = dstep(torch.zeros(3), torch.zeros(3), x, x)
    step.critic = lambda inputs, labels: (inputs * w[labels]).sum(1)
    step.real_condition = y
    got = R1(gamma=2.0).d_cost(torch.tensor(0.0), step)
    assert_close(got, torch.tensor((1.0 + 4.0 + 25.0) / 3))
    step.real_condition = torch.tensor([2, 2, 2])  # the labels matter (the test can fail)
    assert float(R1(gamma=2.0).d_cost(torch.tensor(0.0), step)) == 25.0


# -- runs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", CLASS_KINDS)
def test_conditional_run_reports_per_class_accuracy(make_cfg, kind: str) -> None:
    metrics = train(make_cfg(f"conditioning={kind}", "train.iterations=4",
                             "metrics.every_n_iterations=0"))
    assert metrics["iterations"] == 4
    per_class = [metrics[f"class_accuracy_{k}"] for k in range(25)]
    assert all(0.0 <= a <= 1.0 for a in per_class)
    assert abs(metrics["class_accuracy"] - sum(per_class) / 25) <= 1e-12


def test_auxiliary_logs_its_terms(make_cfg, tmp_path) -> None:
    import json

    train(make_cfg("conditioning=auxiliary", "logger=csv", "train.iterations=5",
                   "metrics.every_n_iterations=0"))
    files = list((tmp_path / "run").rglob("metrics.csv"))
    assert files, list((tmp_path / "run").rglob("*"))
    header = files[0].read_text().splitlines()[0].split(",")
    for key in ("train/auxiliary/d_class_cost", "train/auxiliary/g_class_cost",
                "train/auxiliary/accuracy_real"):
        assert key in header, header
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["iterations"] == 5


def test_conditional_resume_is_bit_identical(make_cfg, tmp_path) -> None:
    common = ["conditioning=auxiliary", "metrics.every_n_iterations=0",
              "trainer.deterministic=true", "callbacks.checkpoint.every_n_iterations=4",
              "callbacks.checkpoint.keep_every_n_iterations=4"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    train(make_cfg("train.iterations=8", *common, out=full))
    ckpt = full / "checkpoints" / "iter_4.ckpt"
    train(make_cfg("train.iterations=8", *common, f"ckpt_path={ckpt}", out=resumed))
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    assert any("classifier" in key for key in a)  # the class head is in the checkpoint
    for key in a:
        assert torch.equal(a[key], b[key]), key
    c = torch.load(ckpt, weights_only=True)["state_dict"]
    assert not all(torch.equal(a[key], c[key]) for key in a)


def test_conditioning_works_on_the_ring(make_cfg) -> None:
    """300 iterations put the samples requested for mode k nearest to mode k (chance: 1/8)."""
    metrics = train(make_cfg("data=toy_ring", "conditioning=concat", "train.iterations=300",
                             "train.batch_size=64", "metrics.every_n_iterations=0",
                             "generator.net.hidden_dim=64", "discriminator.net.hidden_dim=64"))
    assert 0.9 <= metrics["class_accuracy"] <= 1.0
