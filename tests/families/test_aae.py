"""The adversarial autoencoder family: each phase trains only its players, by one optimizer step
on the hand-written cost's gradient; determinism, exact resume, building from the config,
metrics and pictures."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from family_helpers import (
    assert_real_then_reconstructions,
    assert_sgd_step,
    assert_unchanged,
    check_autoencoder_pictures,
    check_saved_state_resumes,
    compose_preset,
    context,
    fake_images,
    hand_grads,
    restored,
    same_outputs,
    sgd,
    snapshot,
    softplus,
)
from torch import Tensor, nn

from ganlab.app.build import build as instantiate
from ganlab.core.errors import GanlabError
from ganlab.core.family import TrainContext
from ganlab.core.seeds import EVAL_SEED, RECONSTRUCTION_SEED
from ganlab.data.priors import LabelMixture, Normal, Prior
from ganlab.families.aae import AAE
from ganlab.metrics.mmd import median_distance, mmd2_unbiased
from ganlab.nets.mlp import MLPDiscriminator, MLPEncoder, MLPGenerator

SHAPE = (3,)


def tiny_aae(prior: Prior | None = None, seed: int = 0) -> AAE:
    prior = prior if prior is not None else Normal(2)
    torch.manual_seed(seed)
    return AAE(
        encoder=MLPEncoder(SHAPE, 2, hidden_dim=4, num_layers=1),
        decoder=MLPGenerator(2, SHAPE, hidden_dim=4, num_layers=1),
        discriminator=MLPDiscriminator((2 + prior.num_classes,), hidden_dim=4, num_layers=1),
        prior=prior,
        optimizers={"reconstruction": sgd, "discriminator": sgd, "generator": sgd},
    )


def batch(seed: int = 1, n: int = 8) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g), torch.randint(10, (n,), generator=g)


def test_reconstruction_phase_steps_encoder_and_decoder_only() -> None:
    family = tiny_aae()
    ctx = context(family)
    x, _ = batch()
    before = snapshot(family)

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        rec = nets["decoder"](nets["encoder"](x))
        return ((x - rec) ** 2).sum() / x.numel()

    grads = hand_grads(cost, family, ["encoder", "decoder"])
    value = family.reconstruction_phase(x, ctx)
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0)
    assert_unchanged(before, family, ["discriminator"])
    with torch.no_grad():
        old = cost(restored(before, family))
    assert value.item() == pytest.approx(old.item(), rel=1e-6)


@pytest.mark.parametrize("conditioned", [False, True], ids=["normal", "label_mixture"])
def test_discriminator_phase_steps_the_discriminator_only(conditioned: bool) -> None:
    prior = LabelMixture() if conditioned else Normal(2)
    family = tiny_aae(prior)
    ctx = context(family)
    x, y = batch()
    before = snapshot(family)
    # The prior samples the phase will draw, from a copy of the noise generator.
    g = torch.Generator().manual_seed(3)
    if conditioned:
        components = torch.randint(10, (8,), generator=g)
        z = prior.centres.float()[components] + 0.5 * torch.randn(8, 2, generator=g)
        z_in = torch.cat([z, nn.functional.one_hot(components, 10).float()], 1)
    else:
        z_in = torch.randn(8, 2, generator=g)

    def code_input(nets: dict[str, nn.Module]) -> Tensor:
        codes = nets["encoder"](x)
        return torch.cat([codes, nn.functional.one_hot(y, 10).float()], 1) if conditioned \
            else codes

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        d = nets["discriminator"]
        return 0.5 * softplus(-d(z_in)).mean() + 0.5 * softplus(d(code_input(nets))).mean()

    grads = hand_grads(cost, family, ["discriminator"])
    out = family.discriminator_phase(x, y, ctx)
    # The codes are constants of D's cost: nothing back-propagates into the encoder.
    assert all(p.grad is None for p in family.encoder.parameters())
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0)
    assert_unchanged(before, family, ["encoder", "decoder"])
    old = restored(before, family)
    d = old["discriminator"]
    with torch.no_grad():
        assert out["d_loss"].item() == pytest.approx(cost(old).item(), rel=1e-6)
        assert out["D_prior"].item() == pytest.approx(torch.sigmoid(d(z_in)).mean().item(),
                                                      rel=1e-6)
        assert out["D_code"].item() == pytest.approx(
            torch.sigmoid(d(code_input(old))).mean().item(), rel=1e-6)


@pytest.mark.parametrize("conditioned", [False, True], ids=["normal", "label_mixture"])
def test_generator_phase_steps_the_encoder_only(conditioned: bool) -> None:
    family = tiny_aae(LabelMixture() if conditioned else Normal(2))
    ctx = context(family)
    x, y = batch()
    before = snapshot(family)

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        codes = nets["encoder"](x)
        if conditioned:
            codes = torch.cat([codes, nn.functional.one_hot(y, 10).float()], 1)
        return 0.5 * softplus(-nets["discriminator"](codes)).mean()

    grads = hand_grads(cost, family, ["encoder"])
    value = family.generator_phase(x, y, ctx)
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0)
    assert_unchanged(before, family, ["decoder", "discriminator"])
    assert value.requires_grad is False


def test_train_step_is_the_three_phases_in_order() -> None:
    x, y = batch()
    a, b = tiny_aae(), tiny_aae()
    ctx_a, ctx_b = context(a), context(b)
    out = a.train_step(([x], [y]), ctx_a)
    rec = b.reconstruction_phase(x, ctx_b)
    d = b.discriminator_phase(x, y, ctx_b)
    g = b.generator_phase(x, y, ctx_b)
    assert set(out) == {"reconstruction", "d_loss", "g_loss", "D_prior", "D_code"}
    assert all(v.dim() == 0 and not v.requires_grad for v in out.values())
    assert torch.equal(out["reconstruction"], rec) and torch.equal(out["g_loss"], g)
    assert all(torch.equal(out[k], d[k]) for k in d)
    after_b = snapshot(b)
    assert_unchanged(after_b, a, ["encoder", "decoder", "discriminator"])


def run(family: AAE, ctx: TrainContext, steps: range) -> list[dict[str, Tensor]]:
    return [family.train_step(([x], [y]), ctx) for x, y in (batch(seed=i) for i in steps)]


def test_train_step_is_fixed_by_the_seeds() -> None:
    a, b = tiny_aae(LabelMixture()), tiny_aae(LabelMixture())
    out_a, out_b = run(a, context(a), range(3)), run(b, context(b), range(3))
    assert same_outputs(out_a, out_b)
    assert_unchanged(snapshot(b), a, ["encoder", "decoder", "discriminator"])
    c = tiny_aae(LabelMixture())
    run(c, context(c, noise_seed=4), range(3))
    assert not torch.equal(c.discriminator.head_linear.weight, a.discriminator.head_linear.weight)


def test_resume_from_saved_state_is_bit_exact() -> None:
    straight, resumed = check_saved_state_resumes(tiny_aae, run)
    assert_unchanged(snapshot(straight), resumed, ["encoder", "decoder", "discriminator"])


def test_interface() -> None:
    family = tiny_aae()
    assert family.name == "aae" and family.evaluated is family.decoder
    assert family.provides == {"model.encode", "model.metrics"}
    assert list(family.optimizers()) == ["reconstruction", "discriminator", "generator"]
    assert [roles for _, roles in family.optimizers().values()] == [
        ["encoder", "decoder"], ["discriminator"], ["encoder"]]
    z = family.sample_latent(5, torch.Generator().manual_seed(0))
    assert torch.equal(z, torch.randn(5, 2, generator=torch.Generator().manual_seed(0)))
    x, _ = batch()
    assert torch.equal(family.reconstruct(x), family.decoder(family.encoder(x)))
    assert family.tags() == ["model=aae", "prior=normal"]


# -- building from the config -----------------------------------------------------------------

SMALL = ["model.encoder.hidden_dim=8", "model.decoder.hidden_dim=8",
         "model.discriminator.hidden_dim=8"]


@pytest.mark.parametrize(("prior", "d_in"), [("normal", 2), ("mixture", 2), ("swiss_roll", 2),
                                              ("label_mixture", 12)])
def test_from_config_builds_every_prior(prior: str, d_in: int) -> None:
    cfg = compose_preset("aae_mnist_offline", [f"model/prior={prior}", *SMALL])
    family = AAE.from_config(cfg, fake_images(), instantiate)
    assert family.prior.name == prior and family.prior.dim == 2
    assert family.discriminator.data_shape == (d_in,)
    assert family.encoder.code_dim == 2 and family.decoder.data_shape == (1, 4, 4)
    assert isinstance(family.decoder.net[-1], nn.Tanh)  # output=auto on images
    opt = family.factories["reconstruction"](family.encoder.parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 1e-3
    assert cfg.data.held_out == 0.1 and cfg.data._target_.endswith("MNISTOffline")


@pytest.mark.parametrize(("overrides", "message"), [
    (["model/prior=mixture", "model.code_dim=3"], "draws 2-D codes but model.code_dim is 3"),
    (["model.mmd_bandwidth=-1"], "model.mmd_bandwidth must be > 0"),
])
def test_from_config_bad_input_is_one_line(overrides: list[str], message: str) -> None:
    cfg = compose_preset("aae_mnist_offline", [*overrides, *SMALL])
    with pytest.raises(GanlabError, match=message) as err:
        AAE.from_config(cfg, fake_images(), instantiate)
    assert "\n" not in str(err.value)


def test_label_prior_needs_as_many_classes_as_the_data() -> None:
    cfg = compose_preset("aae_mnist_offline", ["model/prior=label_mixture",
                                               "model.prior.num_classes=5", *SMALL])
    with pytest.raises(GanlabError, match="has 5 classes but the data has 10"):
        AAE.from_config(cfg, fake_images(), instantiate)


# -- metrics and pictures ---------------------------------------------------------------------

def image_aae() -> AAE:
    torch.manual_seed(0)
    return AAE(MLPEncoder((1, 4, 4), 2, hidden_dim=8, num_layers=1),
               MLPGenerator(2, (1, 4, 4), hidden_dim=8, num_layers=1, output="tanh"),
               MLPDiscriminator((2,), hidden_dim=8, num_layers=1), Normal(2),
               {"reconstruction": sgd, "discriminator": sgd, "generator": sgd})


def test_metrics_by_hand() -> None:
    family, dm = image_aae(), fake_images()
    values = family.metrics(dm, num_samples=50, device="cpu")
    # All 20 held-out images (fewer than 50), in the order of RECONSTRUCTION_SEED.
    order = torch.randperm(20, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    x = dm.held_out_images[order].float() / 127.5 - 1
    with torch.no_grad():
        codes = family.encoder(x)
        rec = family.decoder(codes)
    assert values["reconstruction_mse"] == pytest.approx(float(((x - rec) ** 2).mean()), rel=1e-6)
    prior = torch.randn(50, 2, generator=torch.Generator().manual_seed(EVAL_SEED))
    sigma = median_distance(torch.randn(1000, 2, generator=torch.Generator().manual_seed(
        EVAL_SEED)))
    assert values["mmd2_posterior_prior"] == pytest.approx(mmd2_unbiased(codes, prior, sigma),
                                                           rel=1e-9)
    protocol = family.protocol()
    assert protocol["mmd_bandwidth"] == sigma and protocol["num_held_out"] == 20
    assert protocol["num_prior_samples"] == 50 and protocol["prior"] == {
        "name": "normal", "dim": 2, "std": 1.0}
    fixed = AAE(family.encoder, family.decoder, family.discriminator, Normal(2),
                family.factories, mmd_bandwidth=0.7)
    assert fixed.metrics(dm, 50, "cpu")["mmd2_posterior_prior"] == pytest.approx(
        mmd2_unbiased(codes, prior, 0.7), rel=1e-9)


def test_metrics_need_held_out_images() -> None:
    dm = SimpleNamespace(data_shape=(1, 4, 4), num_classes=10, labels=torch.zeros(3))
    with pytest.raises(GanlabError, match="set data.held_out"):
        image_aae().metrics(dm, 10, "cpu")


def test_pictures() -> None:
    family, dm = image_aae(), fake_images()
    _, grid = check_autoencoder_pictures(family, dm, family.decoder)
    real, _, _ = family._held_out(dm, 20)
    with torch.no_grad():
        rec = family.reconstruct(real)
    assert_real_then_reconstructions(grid, real, rec)
