"""The Gaussian VAE (ganlab.families.vae), AVB's baseline: its one phase moves encoder and
decoder by one SGD step on the hand-written negative ELBO; the closed-form KL against torch's;
building from the config, one-line errors, the held-out ELBO by hand."""

from __future__ import annotations

import pytest
import torch
from family_helpers import (
    assert_sgd_step,
    compose_preset,
    context,
    fake_images,
    hand_grads,
    log_bernoulli,
    restored,
    sgd,
    snapshot,
)
from torch import Tensor, nn
from torch.distributions import Normal as TorchNormal
from torch.distributions import kl_divergence

from ganlab.app.build import build as instantiate
from ganlab.core.errors import GanlabError
from ganlab.core.seeds import EVAL_SEED, RECONSTRUCTION_SEED
from ganlab.data.priors import Mixture, Normal
from ganlab.families.vae import VAE
from ganlab.nets.mlp import MLPEncoder, MLPGenerator

SHAPE = (1, 2, 2)


def tiny_vae(std: float = 1.0, seed: int = 0, elbo_samples: int = 4) -> VAE:
    torch.manual_seed(seed)
    return VAE(MLPEncoder(SHAPE, 4, hidden_dim=5, num_layers=1),
               MLPGenerator(2, SHAPE, hidden_dim=5, num_layers=1), Normal(2, std),
               {"autoencoder": sgd}, elbo_samples=elbo_samples)


def images(seed: int = 1, n: int = 8) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g) * 2 - 1


def kl_by_hand(mean: Tensor, log_var: Tensor, std: float) -> Tensor:
    """``KL(N(μ, σ²) || N(0, s²))`` per row, torch's closed form summed over the code."""
    q = TorchNormal(mean, torch.exp(0.5 * log_var))
    return kl_divergence(q, TorchNormal(torch.zeros_like(mean), std)).sum(1)


@pytest.mark.parametrize("std", [1.0, 0.5])
def test_kl_is_the_closed_form(std: float) -> None:
    family = tiny_vae(std)
    g = torch.Generator().manual_seed(0)
    mean, log_var = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    torch.testing.assert_close(family.kl(mean, log_var), kl_by_hand(mean, log_var, std))
    assert family.kl(torch.zeros(1, 2), torch.full((1, 2), 2 * torch.tensor(std).log())) \
        .abs().item() < 1e-6  # q = p


def test_autoencoder_phase_steps_encoder_and_decoder() -> None:
    family = tiny_vae(0.5)
    ctx = context(family)
    x = images()
    eps = torch.randn(8, 2, generator=torch.Generator().manual_seed(7))
    before = snapshot(family)

    def terms(nets: dict[str, nn.Module]) -> tuple[Tensor, Tensor]:
        out = nets["encoder"](x)
        mean, log_var = out[:, :2], out[:, 2:]
        z = mean + torch.sqrt(torch.exp(log_var)) * eps
        return kl_by_hand(mean, log_var, 0.5), log_bernoulli(nets["decoder"](z), x)

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        kl, log_lik = terms(nets)
        return (kl - log_lik).sum() / 8

    grads = hand_grads(cost, family, ["encoder", "decoder"])
    out = family.autoencoder_phase(x, eps, ctx)
    assert_sgd_step(before, family, grads)
    with torch.no_grad():
        kl, log_lik = terms(restored(before, family))
    assert out["neg_elbo"].item() == pytest.approx((kl - log_lik).mean().item(), rel=1e-6)
    assert out["kl"].item() == pytest.approx(kl.mean().item(), rel=1e-6)
    assert out["log_likelihood"].item() == pytest.approx(log_lik.mean().item(), rel=1e-6)


def test_train_step_draws_eps_from_the_run_noise() -> None:
    x = images()
    a, b = tiny_vae(), tiny_vae()
    ctx_a, ctx_b = context(a), context(b)
    out = a.train_step(([x], [torch.zeros(8)]), ctx_a)
    g = torch.Generator().manual_seed(3)
    expected = b.autoencoder_phase(x, torch.randn(8, 2, generator=g), ctx_b)
    assert set(out) == {"neg_elbo", "log_likelihood", "kl"}
    assert all(torch.equal(out[k], expected[k]) for k in expected)
    assert torch.equal(ctx_a.noise.get_state(), g.get_state())
    for role, net in b.networks().items():
        assert all(torch.equal(p, q) for p, q in zip(net.parameters(),
                                                     a.networks()[role].parameters(),
                                                     strict=True))


def test_interface() -> None:
    family = tiny_vae()
    assert family.name == "vae" and family.evaluated is family.decoder
    assert family.provides == {"model.encode", "model.metrics"}
    assert list(family.optimizers()) == ["autoencoder"] and family.steps_per_iteration == 1
    assert set(family.networks()) == {"encoder", "decoder"}
    x = images(n=5)
    out = family.encoder(x)
    eps = torch.randn(5, 2, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    code = out[:, :2] + torch.exp(out[:, 2:] / 2) * eps
    torch.testing.assert_close(family.encode(x), code)
    torch.testing.assert_close(family.reconstruct(x),
                               2 * torch.sigmoid(family.decoder(code)) - 1)
    assert family.tags() == ["model=vae", "prior=normal"]


SMALL = ["model.encoder.hidden_dim=8", "model.decoder.hidden_dim=8"]


def test_from_config_builds_the_preset_with_avbs_networks() -> None:
    cfg = compose_preset("vae_mnist_offline", SMALL)
    family = VAE.from_config(cfg, fake_images(), instantiate)
    assert family.encoder.data_shape == (1, 4, 4) and family.encoder.code_dim == 4
    assert family.decoder.data_shape == (1, 4, 4) and family.decoder.latent_dim == 2
    assert isinstance(family.decoder.net[-1], nn.Linear)
    assert family.elbo_samples == 10 and family.marginal_samples == 10000
    # The presets of VAE and AVB: the same encoder and decoder layers, optimizer, data and run.
    vae = compose_preset("vae_mnist_offline")
    avb = compose_preset("avb_mnist_offline")
    for role in ("encoder", "decoder"):
        assert vae.model[role] == avb.model[role]
    assert vae.model.optimizers.autoencoder == avb.model.optimizers.autoencoder
    assert vae.train == avb.train and vae.data == avb.data and vae.metrics == avb.metrics
    assert vae.model.code_dim == avb.model.code_dim == 2


@pytest.mark.parametrize(("overrides", "shape", "message"), [
    (["model/prior=mixture"], (1, 4, 4), "model=vae needs model/prior=normal"),
    (["model.code_dim=3", "model.prior.dim=2"], (1, 4, 4),
     "draws 2-D codes but model.code_dim is 3"),
    (["+model.decoder.output=tanh"], (1, 4, 4), "model.decoder.output must be linear"),
    (["model.elbo_samples=0"], (1, 4, 4), "model.elbo_samples must be >= 1"),
    (["model.marginal_samples=-1"], (1, 4, 4), "model.marginal_samples must be >= 0"),
    (["~model.optimizers.autoencoder"], (1, 4, 4), "model=vae: no optimizer for autoencoder"),
    ([], (2,), "model=vae models pixels in"),
])
def test_from_config_bad_input_is_one_line(overrides: list[str], shape: tuple[int, ...],
                                           message: str) -> None:
    cfg = compose_preset("vae_mnist_offline", [*overrides, *SMALL])
    with pytest.raises(GanlabError, match=message) as err:
        VAE.from_config(cfg, fake_images(shape=shape), instantiate)
    assert "\n" not in str(err.value)


def test_a_prior_without_closed_form_kl_is_refused() -> None:
    with pytest.raises(GanlabError, match="got model.prior mixture"):
        VAE(MLPEncoder(SHAPE, 4, 5, 1), MLPGenerator(2, SHAPE, 5, 1), Mixture(),
            {"autoencoder": sgd})


def test_metrics_by_hand() -> None:
    torch.manual_seed(0)
    family = VAE(MLPEncoder((1, 4, 4), 4, hidden_dim=8, num_layers=1),
                 MLPGenerator(2, (1, 4, 4), hidden_dim=8, num_layers=1), Normal(2),
                 {"autoencoder": sgd}, elbo_samples=3)
    dm = fake_images()
    values = family.metrics(dm, num_samples=50, device="cpu")
    order = torch.randperm(20, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    x = dm.held_out_images[order].float() / 127.5 - 1
    eps = torch.randn(20, 3, 2, generator=torch.Generator().manual_seed(EVAL_SEED))
    with torch.no_grad():
        out = family.encoder(x)
        mean, std = out[:, :2], torch.exp(out[:, 2:] / 2)
        kl = kl_by_hand(mean, out[:, 2:], 1.0)
        log_lik = sum(log_bernoulli(family.decoder(mean + std * eps[:, k]), x)
                      for k in range(3)) / 3
        z = mean + std * torch.randn(20, 2, generator=torch.Generator().manual_seed(
            RECONSTRUCTION_SEED))
        rec = 2 * torch.sigmoid(family.decoder(z)) - 1
    assert values["elbo"] == pytest.approx(float((log_lik - kl).mean()), rel=1e-5)
    assert values["elbo_kl"] == pytest.approx(float(kl.mean()), rel=1e-5)
    assert values["elbo_log_likelihood"] == pytest.approx(float(log_lik.mean()), rel=1e-5)
    assert values["reconstruction_mse"] == pytest.approx(float(((x - rec) ** 2).mean()),
                                                         rel=1e-5)
    assert "closed form" in family.protocol()["elbo_kl"]


def test_log_marginal_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    from ganlab.families import autoencoding

    monkeypatch.setattr(autoencoding, "MARGINAL_CHUNK", 3)  # 7 prior samples in 3 chunks
    torch.manual_seed(0)
    family = VAE(MLPEncoder((1, 4, 4), 4, hidden_dim=8, num_layers=1),
                 MLPGenerator(2, (1, 4, 4), hidden_dim=8, num_layers=1), Normal(2, 0.5),
                 {"autoencoder": sgd}, marginal_samples=7)
    dm = fake_images()
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(2)) * 2 - 1
    z = 0.5 * torch.randn(7, 2, generator=torch.Generator().manual_seed(EVAL_SEED))
    with torch.no_grad():
        lik = torch.stack([log_bernoulli(family.decoder(z[k:k + 1]).expand(5, -1, -1, -1), x)
                           for k in range(7)], 1).double()
    expected = torch.log(torch.exp(lik).mean(1))
    torch.testing.assert_close(family.log_marginal(x, "cpu").double(), expected, atol=1e-4,
                               rtol=1e-6)
    values = family.metrics(dm, 50, "cpu")
    order = torch.randperm(20, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    held = dm.held_out_images[order].float() / 127.5 - 1
    assert values["log_px"] == pytest.approx(float(family.log_marginal(held, "cpu").mean()),
                                             rel=1e-6)
    off = VAE(family.encoder, family.decoder, Normal(2, 0.5), {"autoencoder": sgd})
    assert set(off.metrics(dm, 50, "cpu")) == set(values) - {"log_px"}  # 0 samples: off
