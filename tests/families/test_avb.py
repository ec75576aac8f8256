"""Adversarial variational Bayes (ganlab.families.avb): each phase trains only its players, by
one SGD step on the hand-written cost's gradient; T learns log q(z|x) - log p(z) on a toy
where both are Gaussians in closed form; building from the config, metrics and pictures."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from family_helpers import (
    assert_real_then_reconstructions,
    assert_sgd_step,
    assert_unchanged,
    check_autoencoder_pictures,
    compose_preset,
    context,
    fake_images,
    hand_grads,
    log_bernoulli,
    restored,
    sgd,
    snapshot,
    softplus,
)
from torch import Tensor, nn

from ganlab.app.build import build as instantiate
from ganlab.core.errors import GanlabError
from ganlab.core.seeds import EVAL_SEED, RECONSTRUCTION_SEED, SAMPLE_SEED
from ganlab.data.priors import Normal
from ganlab.families.autoencoding import bernoulli_log_likelihood, bernoulli_mean
from ganlab.families.avb import AVB
from ganlab.nets.mlp import MLPDiscriminator, MLPEncoder, MLPGenerator

SHAPE = (1, 2, 2)
NOISE = 3


def tiny_avb(seed: int = 0, elbo_samples: int = 4) -> AVB:
    torch.manual_seed(seed)
    return AVB(
        encoder=MLPEncoder((4 + NOISE,), 2, hidden_dim=5, num_layers=1),
        decoder=MLPGenerator(2, SHAPE, hidden_dim=5, num_layers=1),
        discriminator=MLPDiscriminator((4 + 2,), hidden_dim=5, num_layers=1),
        prior=Normal(2),
        optimizers={"discriminator": sgd, "autoencoder": sgd},
        noise_dim=NOISE, elbo_samples=elbo_samples,
    )


def images(seed: int = 1, n: int = 8) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g) * 2 - 1


def test_bernoulli_likelihood_and_mean() -> None:
    g = torch.Generator().manual_seed(0)
    logits, x = torch.randn(5, *SHAPE, generator=g), images(n=5)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, x), log_bernoulli(logits, x))
    # Binary pixels (x = ±1): the log-probability of torch's Bernoulli.
    binary = torch.where(x > 0, 1.0, -1.0)
    expected = torch.distributions.Bernoulli(logits=logits).log_prob((binary + 1) / 2)
    torch.testing.assert_close(bernoulli_log_likelihood(logits, binary),
                               expected.flatten(1).sum(1))
    assert bernoulli_log_likelihood(logits, x).shape == (5,)
    torch.testing.assert_close(bernoulli_mean(logits), 2 / (1 + torch.exp(-logits)) - 1)


def test_discriminator_phase_steps_t_only() -> None:
    family = tiny_avb()
    ctx = context(family)
    x = images()
    g = torch.Generator().manual_seed(7)
    eps, z_p = torch.randn(8, NOISE, generator=g), torch.randn(8, 2, generator=g)
    before = snapshot(family)

    def pairs(nets: dict[str, nn.Module]) -> tuple[Tensor, Tensor]:
        flat = x.reshape(8, 4)
        z_q = nets["encoder"](torch.cat([flat, eps], 1)).detach()
        t = nets["discriminator"]
        return t(torch.cat([flat, z_q], 1)), t(torch.cat([flat, z_p], 1))

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        t_q, t_p = pairs(nets)
        return softplus(-t_q).mean() + softplus(t_p).mean()

    grads = hand_grads(cost, family, ["discriminator"])
    out = family.discriminator_phase(x, eps, z_p, ctx)
    assert all(p.grad is None for p in family.encoder.parameters())
    assert_sgd_step(before, family, grads)
    assert_unchanged(before, family, ["encoder", "decoder"])
    old = restored(before, family)
    with torch.no_grad():
        t_q, t_p = pairs(old)
        assert out["t_loss"].item() == pytest.approx(cost(old).item(), rel=1e-6)
    assert out["T_q"].item() == pytest.approx(t_q.mean().item(), rel=1e-6)
    assert out["T_prior"].item() == pytest.approx(t_p.mean().item(), rel=1e-6)


def test_autoencoder_phase_steps_encoder_and_decoder_only() -> None:
    family = tiny_avb()
    ctx = context(family)
    x = images()
    eps = torch.randn(8, NOISE, generator=torch.Generator().manual_seed(7))
    before = snapshot(family)

    def terms(nets: dict[str, nn.Module]) -> tuple[Tensor, Tensor]:
        flat = x.reshape(8, 4)
        z = nets["encoder"](torch.cat([flat, eps], 1))
        return nets["discriminator"](torch.cat([flat, z], 1)), log_bernoulli(
            nets["decoder"](z), x)

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        t, log_lik = terms(nets)
        return (t - log_lik).sum() / 8

    grads = hand_grads(cost, family, ["encoder", "decoder"])
    # T's gradient reaches the encoder through z (eq. 3.8): the step differs from the
    # likelihood's alone.
    alone = hand_grads(lambda nets: -terms(nets)[1].mean(), family, ["encoder"])
    assert not torch.allclose(alone["encoder"]["net.1.weight"], grads["encoder"]["net.1.weight"])
    out = family.autoencoder_phase(x, eps, ctx)
    assert_sgd_step(before, family, grads)
    assert_unchanged(before, family, ["discriminator"])
    with torch.no_grad():
        t, log_lik = terms(restored(before, family))
    assert out["neg_elbo"].item() == pytest.approx((t - log_lik).mean().item(), rel=1e-6)
    assert out["kl_T"].item() == pytest.approx(t.mean().item(), rel=1e-6)
    assert out["log_likelihood"].item() == pytest.approx(log_lik.mean().item(), rel=1e-6)


def test_train_step_draws_eps_then_the_prior_and_runs_both_phases_in_order() -> None:
    x = images()
    a, b = tiny_avb(), tiny_avb()
    ctx_a, ctx_b = context(a), context(b)
    out = a.train_step(([x], [torch.zeros(8)]), ctx_a)
    g = torch.Generator().manual_seed(3)  # the noise generator of context()
    eps, z_p = torch.randn(8, NOISE, generator=g), torch.randn(8, 2, generator=g)
    d = b.discriminator_phase(x, eps, z_p, ctx_b)
    e = b.autoencoder_phase(x, eps, ctx_b)
    assert set(out) == {"t_loss", "T_q", "T_prior", "neg_elbo", "log_likelihood", "kl_T"}
    assert all(v.dim() == 0 and not v.requires_grad for v in out.values())
    assert all(torch.equal(out[k], v) for k, v in {**d, **e}.items())
    assert_unchanged(snapshot(b), a, ["encoder", "decoder", "discriminator"])
    assert torch.equal(ctx_a.noise.get_state(), g.get_state())
    c = tiny_avb()
    c.train_step(([x], [torch.zeros(8)]), context(c, noise_seed=4))
    assert not torch.equal(c.discriminator.head_linear.weight, a.discriminator.head_linear.weight)


# -- the toy: T approaches log q(z|x) - log p(z) --------------------------------------------------

#: q(z|x) = N(A x + B, S²), p(z) = N(0, 1), x ~ N(0, 1) (1-D each).
A, B, S = 1.0, 0.5, 0.5


def log_ratio(x: Tensor, z: Tensor) -> Tensor:
    """``log N(z; A x + B, S²) - log N(z; 0, 1)`` in closed form."""
    return -math.log(S) - (z - A * x - B) ** 2 / (2 * S**2) + z**2 / 2


def toy_avb() -> AVB:
    """An AVB on 1-D x whose encoder is the fixed Gaussian ``z = A x + B + S ε``."""
    torch.manual_seed(0)
    encoder = nn.Linear(2, 1)
    with torch.no_grad():
        encoder.weight.copy_(torch.tensor([[A, S]]))
        encoder.bias.fill_(B)
    encoder.requires_grad_(False)
    adam = lambda params: torch.optim.Adam(params, lr=3e-3)  # noqa: E731
    return AVB(encoder, nn.Linear(1, 1), MLPDiscriminator((2,), hidden_dim=64, num_layers=2),
               Normal(1), {"discriminator": adam, "autoencoder": sgd}, noise_dim=1)


def toy_errors(family: AVB) -> tuple[float, float, float]:
    """On 4,000 x ~ N(0, 1): the RMS of ``T - log q/p`` over ``z ~ q(z|x)`` (where the ELBO
    reads T), ``|E_q T - KL(q || p)|`` (the KL in closed form,
    ``-log S + (S² + (A x + B)²) / 2 - 1/2``, averaged over x), and the median of
    ``|T - log q/p|`` over ``z ~ p(z)``."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(4000, 1, generator=g)
    z_q = A * x + B + S * torch.randn(4000, 1, generator=g)
    z_p = torch.randn(4000, 1, generator=g)
    with torch.no_grad():
        t_q, t_p = family.t(x, z_q), family.t(x, z_p)
    r_q, r_p = log_ratio(x, z_q).squeeze(1), log_ratio(x, z_p).squeeze(1)
    kl = (-math.log(S) + (S**2 + (A * x + B) ** 2) / 2 - 0.5).mean()
    return (float((t_q - r_q).pow(2).mean().sqrt()), float((t_q.mean() - kl).abs()),
            float((t_p - r_p).abs().median()))


def test_trained_t_approaches_the_log_density_ratio() -> None:
    family = toy_avb()
    ctx = context(family, noise_seed=5)
    untrained = toy_errors(family)
    g = torch.Generator().manual_seed(6)
    for _ in range(600):
        x = torch.randn(256, 1, generator=g)
        eps, z_p = torch.randn(256, 1, generator=ctx.noise), torch.randn(
            256, 1, generator=ctx.noise)
        family.discriminator_phase(x, eps, z_p, ctx)
    rms_q, kl_error, median_p = toy_errors(family)
    # Over z ~ q the log-ratio has mean 0.93 (the KL) and standard deviation 1.14 nats. Far
    # in p's tails, where q has no mass, the logistic loss does not pin T down: there the
    # test reads the median error.
    assert 0.0 <= rms_q <= 0.3, rms_q
    assert 0.0 <= kl_error <= 0.1, kl_error
    assert 0.0 <= median_p <= 0.3, median_p
    # Control: an untrained T is far from it.
    assert untrained[0] >= 1.0 and untrained[1] >= 0.5 and untrained[2] >= 1.0, untrained


# -- interface, config, errors --------------------------------------------------------------------

def test_interface() -> None:
    family = tiny_avb()
    assert family.name == "avb" and family.evaluated is family.decoder
    assert family.provides == {"model.encode", "model.metrics"}
    assert list(family.optimizers()) == ["discriminator", "autoencoder"]
    assert [roles for _, roles in family.optimizers().values()] == [
        ["discriminator"], ["encoder", "decoder"]]
    assert family.steps_per_iteration == 2
    z = family.sample_latent(5, torch.Generator().manual_seed(0))
    assert torch.equal(z, torch.randn(5, 2, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(family.decode(z), 2 * torch.sigmoid(family.decoder(z)) - 1)
    x = images(n=5)
    eps = torch.randn(5, NOISE, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    code = family.encoder(torch.cat([x.reshape(5, 4), eps], 1))
    torch.testing.assert_close(family.encode(x), code)
    torch.testing.assert_close(family.reconstruct(x), family.decode(code))
    assert family.tags() == ["model=avb", "prior=normal"]


SMALL = ["model.encoder.hidden_dim=8", "model.decoder.hidden_dim=8",
         "model.discriminator.hidden_dim=8"]


def test_from_config_builds_the_preset() -> None:
    cfg = compose_preset("avb_mnist_offline", SMALL)
    family = AVB.from_config(cfg, fake_images(), instantiate)
    assert family.encoder.data_shape == (16 + 8,) and family.encoder.code_dim == 2
    assert family.discriminator.data_shape == (16 + 2,)
    assert family.decoder.data_shape == (1, 4, 4)
    assert isinstance(family.decoder.net[-1], nn.Linear)  # Bernoulli logits
    assert family.noise_dim == 8 and family.elbo_samples == 10 and family.prior.name == "normal"
    assert family.marginal_samples == 10000
    opt = family.factories["discriminator"](family.discriminator.parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 1e-3
    assert cfg.data.held_out == 0.1 and cfg.data._target_.endswith("MNISTOffline")
    assert cfg.extractor._target_.endswith("load_classifier_extractor")


@pytest.mark.parametrize(("overrides", "data_shape", "message"), [
    (["model/prior=mixture", "model.code_dim=3"], (1, 4, 4),
     "draws 2-D codes but model.code_dim is 3"),
    (["model/prior=label_mixture"], (1, 4, 4), "model=avb has no label-conditioned prior"),
    (["+model.decoder.output=tanh"], (1, 4, 4), "model.decoder.output must be linear"),
    (["model.elbo_samples=0"], (1, 4, 4), "model.elbo_samples must be >= 1"),
    (["model.noise_dim=0"], (1, 4, 4), "model.noise_dim must be >= 1"),
    (["~model.optimizers.autoencoder"], (1, 4, 4), "model=avb: no optimizer for autoencoder"),
    ([], (2,), r"needs image data \(C, H, W\); got data shape \(2,\)"),
])
def test_from_config_bad_input_is_one_line(overrides: list[str], data_shape: tuple[int, ...],
                                           message: str) -> None:
    cfg = compose_preset("avb_mnist_offline", [*overrides, *SMALL])
    with pytest.raises(GanlabError, match=message) as err:
        AVB.from_config(cfg, fake_images(shape=data_shape), instantiate)
    assert "\n" not in str(err.value)


# -- metrics and pictures ---------------------------------------------------------------------

def image_avb() -> AVB:
    torch.manual_seed(0)
    return AVB(MLPEncoder((16 + NOISE,), 2, hidden_dim=8, num_layers=1),
               MLPGenerator(2, (1, 4, 4), hidden_dim=8, num_layers=1),
               MLPDiscriminator((16 + 2,), hidden_dim=8, num_layers=1), Normal(2),
               {"discriminator": sgd, "autoencoder": sgd}, noise_dim=NOISE, elbo_samples=3)


def held_out_x(dm: SimpleNamespace) -> Tensor:
    """All 20 held-out images in [-1, 1], in the order of RECONSTRUCTION_SEED."""
    order = torch.randperm(20, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    return dm.held_out_images[order].float() / 127.5 - 1


def test_metrics_by_hand() -> None:
    family, dm = image_avb(), fake_images()
    values = family.metrics(dm, num_samples=50, device="cpu")
    x = held_out_x(dm)
    flat = x.reshape(20, 16)
    # 3 z ~ q(z|x) per image, the noise of all (20, 3, NOISE) drawn at once from EVAL_SEED.
    eps = torch.randn(20, 3, NOISE, generator=torch.Generator().manual_seed(EVAL_SEED))
    with torch.no_grad():
        log_lik, t = torch.zeros(20), torch.zeros(20)
        for k in range(3):
            z = family.encoder(torch.cat([flat, eps[:, k]], 1))
            log_lik += log_bernoulli(family.decoder(z), x) / 3
            t += family.discriminator(torch.cat([flat, z], 1)) / 3
        z = family.encoder(torch.cat([flat, torch.randn(
            20, NOISE, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))], 1))
        rec = 2 * torch.sigmoid(family.decoder(z)) - 1
    assert values["elbo"] == pytest.approx(float((log_lik - t).mean()), rel=1e-5)
    assert values["elbo_log_likelihood"] == pytest.approx(float(log_lik.mean()), rel=1e-5)
    assert values["elbo_kl"] == pytest.approx(float(t.mean()), rel=1e-4)
    assert values["reconstruction_mse"] == pytest.approx(float(((x - rec) ** 2).mean()),
                                                         rel=1e-5)
    protocol = family.protocol()
    assert protocol["num_held_out"] == 20 and protocol["elbo_seed"] == EVAL_SEED
    assert "T(x, z)" in protocol["elbo_kl"] and "Bernoulli" in protocol["likelihood"]


def test_metrics_need_held_out_images() -> None:
    dm = SimpleNamespace(data_shape=(1, 4, 4), num_classes=10, labels=torch.zeros(3))
    with pytest.raises(GanlabError, match="model=avb measures on held-out images.*"
                                          "set data.held_out"):
        image_avb().metrics(dm, 10, "cpu")


def test_pictures() -> None:
    family, dm = image_avb(), fake_images()
    samples, grid = check_autoencoder_pictures(family, dm, family.decode)
    assert samples.min() >= -1 and samples.max() <= 1
    x = held_out_x(dm)
    eps = torch.randn(20, NOISE, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    with torch.no_grad():
        rec = family.decode(family.encoder(torch.cat([x.reshape(20, 16), eps], 1)))
    assert_real_then_reconstructions(grid, x, rec)


def test_a_data_parallel_process_draws_its_rows_of_one_global_noise_batch() -> None:
    from ganlab.families.autoencoding import gaussian_noise

    family = tiny_avb()
    ctx = context(family)
    ctx.world_size, ctx.rank = 2, 1
    got = gaussian_noise(4, NOISE, ctx)
    expected = torch.randn(8, NOISE, generator=torch.Generator().manual_seed(3))[4:]
    assert torch.equal(got, expected)
