"""The pix2pix family: D's and G's costs by hand, each phase moves only its players by exactly
one SGD step, dropout noise from the run's generator, the L1-only baseline, building from the
config, metrics and pictures (ganlab.families.pix2pix)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from family_helpers import (
    LR,
    assert_sgd_step,
    assert_unchanged,
    check_saved_state_resumes,
    compose_preset,
    context,
    restored,
    sgd,
    snapshot,
)
from torch import Tensor, nn

from ganlab.app.build import build as instantiate
from ganlab.core.errors import GanlabError
from ganlab.core.family import TrainContext
from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.families.pix2pix import Pix2Pix
from ganlab.metrics import paired
from ganlab.nets.patchgan import PatchGANDiscriminator
from ganlab.nets.unet import UNetGenerator

SIDE = 8


def tiny(adversarial_weight: float = 1.0, seed: int = 0, l1_weight: float = 100.0) -> Pix2Pix:
    torch.manual_seed(seed)
    g = UNetGenerator(1, 1, SIDE, depth=2, base_width=4)
    d = PatchGANDiscriminator(1, 1, n_layers=1, base_width=4)
    sources = torch.rand(6, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(9)) * 2 - 1
    return Pix2Pix(g, d, {"generator": sgd, "discriminator": sgd}, sources,
                   l1_weight=l1_weight, adversarial_weight=adversarial_weight)


def pairs(seed: int = 1, n: int = 4) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, SIDE, SIDE, generator=g) * 2 - 1,
            torch.rand(n, 1, SIDE, SIDE, generator=g) * 2 - 1)


def hand_fake(g: nn.Module, x: Tensor, noise_seed: int = 3) -> Tensor:
    """G(x) with the dropout masks the family draws: torch seeded from the run's noise."""
    seed = int(torch.randint(2**62, (1,), generator=torch.Generator().manual_seed(noise_seed)))
    torch.manual_seed(seed)
    return g(x)


def grads_of(cost: Tensor, net: nn.Module) -> dict[str, Tensor]:
    named = list(net.named_parameters())
    return dict(zip([n for n, _ in named], torch.autograd.grad(cost, [p for _, p in named]),
                    strict=True))


def test_the_dropout_masks_come_from_the_runs_noise() -> None:
    family = tiny()
    x, _ = pairs()
    a = family.translate(x, context(family))
    b = family.translate(x, context(family))
    c = family.translate(x, context(family, noise_seed=4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    family.translate(x, context(family))
    assert torch.equal(torch.get_rng_state(), state)  # the global stream is left alone


def test_one_iteration_is_the_d_step_then_the_g_step_by_hand() -> None:
    family = tiny()
    ctx = context(family)
    y, x = pairs()
    before = snapshot(family)
    old = restored(before, family)
    g, d = old["generator"], old["discriminator"]
    # D's cost, G(x) a constant: 1/2 mean softplus(-D(x, y)) + 1/2 mean softplus(D(x, G(x))).
    fake = hand_fake(g, x)
    real_logits, fake_logits = d(x, y), d(x, fake.detach())
    d_cost = 0.5 * torch.log1p(torch.exp(-real_logits)).mean() + \
        0.5 * torch.log1p(torch.exp(fake_logits)).mean()
    d_grads = grads_of(d_cost, d)
    with torch.no_grad():
        for name, p in d.named_parameters():
            p -= LR * d_grads[name]
    # G's cost, with D after its step and the same G(x):
    # mean softplus(-D(x, G(x))) + 100 mean |y - G(x)|.
    adversarial = torch.log1p(torch.exp(-d(x, fake))).mean()
    l1 = (y - fake).abs().sum() / y.numel()
    g_cost = adversarial + 100 * l1
    g_grads = grads_of(g_cost, g)

    out = family.train_step(([y], [x]), ctx)
    assert_sgd_step(before, family, {"discriminator": d_grads, "generator": g_grads}, atol=1e-6,
                    rtol=0)
    assert set(out) == {"d_loss", "D_real", "D_fake", "g_loss", "g_adversarial", "l1"}
    assert all(v.dim() == 0 and not v.requires_grad for v in out.values())
    assert out["d_loss"].item() == pytest.approx(d_cost.item(), rel=1e-6)
    assert out["g_loss"].item() == pytest.approx(g_cost.item(), rel=1e-6)
    assert out["g_adversarial"].item() == pytest.approx(adversarial.item(), rel=1e-6)
    assert out["l1"].item() == pytest.approx(l1.item(), rel=1e-6)
    assert out["D_real"].item() == pytest.approx(torch.sigmoid(real_logits).mean().item(),
                                                 rel=1e-6)


def test_the_d_phase_moves_only_d_and_the_g_phase_only_g() -> None:
    family = tiny()
    ctx = context(family)
    y, x = pairs()
    fake = family.translate(x, ctx)
    before = snapshot(family)
    family.discriminator_phase(x, y, fake, ctx)
    assert all(p.grad is None for p in family.generator.parameters())
    assert_unchanged(before, family, ["generator"], buffers=False)
    middle = snapshot(family)
    family.generator_phase(x, y, fake, ctx)
    assert_unchanged(middle, family, ["discriminator"], buffers=False)
    assert not torch.equal(family.generator.up[0][1].weight, middle["generator"]["up.0.1.weight"])


def test_the_l1_baseline_is_the_same_g_on_l1_alone_without_d() -> None:
    full, baseline = tiny(), tiny(adversarial_weight=0.0)
    assert baseline.discriminator is None and list(baseline.networks()) == ["generator"]
    assert list(baseline.optimizers()) == ["generator"] and baseline.steps_per_iteration == 1
    assert all(torch.equal(a, b) for a, b in zip(full.generator.state_dict().values(),
                                                 baseline.generator.state_dict().values(),
                                                 strict=True))
    ctx = context(baseline)
    y, x = pairs()
    before = snapshot(baseline)
    g = restored(before, baseline)["generator"]
    fake = hand_fake(g, x)
    cost = 100 * (y - fake).abs().mean()
    grads = grads_of(cost, g)
    out = baseline.train_step(([y], [x]), ctx)
    assert set(out) == {"g_loss", "l1"}
    assert out["g_loss"].item() == pytest.approx(cost.item(), rel=1e-6)
    assert_sgd_step(before, baseline, {"generator": grads}, atol=1e-6, rtol=0)
    assert baseline.tags() == ["model=pix2pix", "objective=l1_only"]
    assert full.tags() == ["model=pix2pix", "objective=cgan_l1"]


def run(family: Pix2Pix, ctx: TrainContext, steps: range) -> list[dict[str, Tensor]]:
    return [family.train_step(([y], [x]), ctx) for y, x in (pairs(seed=i) for i in steps)]


def test_resume_from_saved_state_is_bit_exact() -> None:
    check_saved_state_resumes(tiny, run, global_seed=555)  # the global stream plays no part


def test_sample_latent_draws_held_out_sources() -> None:
    family = tiny()
    got = family.sample_latent(10, torch.Generator().manual_seed(0))
    idx = torch.randint(6, (10,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(got, family.inputs[idx])
    assert family.evaluated is family.generator and family.provides == {"model.metrics"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"l1_weight": -1.0}, "must be >= 0"),
    ({"l1_weight": 0.0, "adversarial_weight": 0.0}, "both 0"),
])
def test_bad_weights_are_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(GanlabError, match=message):
        tiny(**kwargs)


def test_missing_optimizer_and_discriminator() -> None:
    g = UNetGenerator(1, 1, SIDE, base_width=4)
    with pytest.raises(GanlabError, match="no optimizer for discriminator"):
        Pix2Pix(g, PatchGANDiscriminator(base_width=4), {"generator": sgd}, torch.zeros(1))
    with pytest.raises(GanlabError, match="needs a discriminator"):
        Pix2Pix(g, None, {"generator": sgd}, torch.zeros(1))


# -- building from the config -----------------------------------------------------------------

def fake_pairs(n: int = 12, side: int = 8, labels: bool = True) -> SimpleNamespace:
    g = torch.Generator().manual_seed(5)
    return SimpleNamespace(
        data_shape=(1, side, side),
        held_out_images=torch.randint(0, 256, (n, 1, side, side), generator=g, dtype=torch.uint8),
        held_out_sources=torch.randint(0, 256, (n, 1, side, side), generator=g,
                                       dtype=torch.uint8),
        held_out_labels=torch.arange(n) % 10 if labels else None)


def test_from_config_builds_the_preset_and_its_baseline() -> None:
    cfg = compose_preset("pix2pix_mnist_offline")
    family = Pix2Pix.from_config(cfg, fake_pairs(), instantiate)
    assert family.l1_weight == 100 and family.adversarial_weight == 1
    assert family.generator.widths == [32, 64] and family.discriminator.receptive_field == 16
    assert family.classifier_path.endswith("classifiers/mnist_offline.pt")
    opt = family.factories["generator"](family.generator.parameters())
    assert opt.defaults["lr"] == 2e-4 and opt.defaults["betas"] == (0.5, 0.999)
    assert cfg.data.pairing == "edges" and cfg.data._target_.endswith("PairedDigits")
    base = compose_preset("pix2pix_mnist_offline", ["experiment=pix2pix_l1_mnist_offline"])
    assert base.name == "pix2pix_l1_mnist_offline" and base.model.adversarial_weight == 0
    assert base.train == cfg.train and base.model.generator == cfg.model.generator
    assert Pix2Pix.from_config(base, fake_pairs(), instantiate).discriminator is None


@pytest.mark.parametrize(("overrides", "dm", "message"), [
    ([], SimpleNamespace(data_shape=(1, 8, 8), held_out_images=None), "needs paired data"),
    ([], SimpleNamespace(**{**vars(fake_pairs()), "held_out_sources": torch.zeros(
        2, 1, 4, 4, dtype=torch.uint8)}), "translates images of one size"),
])
def test_from_config_bad_input_is_one_line(overrides: list[str], dm: Any, message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        Pix2Pix.from_config(compose_preset("pix2pix_mnist_offline", overrides), dm, instantiate)
    assert "\n" not in str(err.value)


# -- metrics and pictures ---------------------------------------------------------------------

class Threshold(nn.Module):
    def digits(self, x: Tensor) -> Tensor:
        return (x.mean(dim=(1, 2, 3)) > 0).long()[:, None]


def test_metrics_are_the_paired_scores_of_held_out_pairs() -> None:
    family = tiny()
    family.generator = UNetGenerator(1, 1, 16, depth=2, base_width=4)
    dm = fake_pairs(side=16)
    family._classifier, family.classifier_path = Threshold(), "fake.pt"
    values = family.metrics(dm, num_samples=8, device="cpu")
    order = torch.randperm(12, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))[:8]
    x = dm.held_out_sources[order].float() / 127.5 - 1
    y = dm.held_out_images[order].float() / 127.5 - 1
    family.generator.eval()
    with torch.no_grad():
        out = family.generator(x)
    assert family.generator.training is False
    labels = dm.held_out_labels[order]
    assert values["l1"] == pytest.approx(float((out - y).abs().mean()), rel=1e-6)
    assert values["psnr"] == pytest.approx(paired.psnr(out, y), rel=1e-9)
    assert values["ssim"] == pytest.approx(paired.ssim(out, y), rel=1e-6)
    assert values["accuracy_outputs"] == pytest.approx(
        float(((out.mean(dim=(1, 2, 3)) > 0).long() == labels).float().mean()))
    assert values["accuracy_targets"] == pytest.approx(
        float(((y.mean(dim=(1, 2, 3)) > 0).long() == labels).float().mean()))
    assert family.protocol()["num_held_out"] == 8
    unlabelled = family.metrics(fake_pairs(side=16, labels=False), 8, "cpu")
    assert set(unlabelled) == {"l1", "psnr", "ssim"}


def test_missing_classifier_file_is_one_line(tmp_path) -> None:
    family = tiny()
    family.generator = UNetGenerator(1, 1, 16, depth=2, base_width=4)
    family.classifier_path = str(tmp_path / "none.pt")
    with pytest.raises(GanlabError, match="no classifier at"):
        family.metrics(fake_pairs(side=16), 8, "cpu")


def test_pictures_are_input_output_target_rows() -> None:
    family, dm = tiny(), fake_pairs()
    sampler = SimpleNamespace(device=torch.device("cpu"),
                              generate_from=lambda x: family.generator.eval()(x).detach())
    grid, nrow = family.pictures(sampler, dm)["translations"]
    assert nrow == 12 and grid.shape == (36, 1, SIDE, SIDE)  # 12 pairs: 3 rows of 4 triples
    x, y, _ = paired.held_out_pairs(dm, 32, "pix2pix")
    with torch.no_grad():
        out = family.generator(x)
    assert torch.equal(grid[0::3], x) and torch.equal(grid[2::3], y)
    torch.testing.assert_close(grid[1::3], out)
    assert F.l1_loss(grid[1::3], y) > 0
