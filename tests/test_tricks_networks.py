"""The network tricks against hand computations and closed forms, and short real runs.

Tricks: minibatch_discrimination, virtual_batch_norm, spectral_norm, ema, ttur
(``src/ganlab/tricks``; formulas in each module's docstring).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.adapter.module import GANModule
from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.core.errors import GanlabError
from ganlab.losses import NonSaturating
from ganlab.nets.dcgan import DCGANGenerator
from ganlab.nets.mlp import MLPDiscriminator, MLPGenerator
from ganlab.tricks.base import Trick
from ganlab.tricks.ema import EMA
from ganlab.tricks.minibatch_discrimination import (
    MinibatchDiscrimination,
    MinibatchDiscriminationTrick,
    MinibatchDiscriminator,
)
from ganlab.tricks.spectral_norm import SpectralNorm, apply_spectral_norm
from ganlab.tricks.ttur import TTUR
from ganlab.tricks.virtual_batch_norm import (
    VirtualBatchNorm,
    VirtualBatchNormGenerator,
    VirtualBatchNormTrick,
)

TOL32 = {"atol": 1e-6, "rtol": 1e-6}
TOL64 = {"atol": 1e-12, "rtol": 1e-12}
NAMES = ["minibatch_discrimination", "virtual_batch_norm", "spectral_norm", "ema", "ttur"]
QUICK = ["train.iterations=4", "metrics.every_n_iterations=0"]
DCGAN_TINY = [
    "experiment=dcgan_mnist_offline",
    "generator.net.base_width=8",
    "discriminator.net.base_width=8",
    "train.batch_size=8",
    "train.iterations=2",
    "metrics.every_n_iterations=0",
]


def make_module(
    generator: nn.Module, latent_dim: int, tricks: list[Trick], data_shape=(2,)
) -> GANModule:
    """A GANModule on ``generator`` and a small MLP discriminator, without Hydra."""
    adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
    return GANModule(
        generator=generator,
        discriminator=MLPDiscriminator(data_shape, hidden_dim=16, num_layers=2),
        loss=NonSaturating(),
        g_optimizer=adam,
        d_optimizer=adam,
        latent_dim=latent_dim,
        tricks=tricks,
    )


def tiny_dcgan_generator(latent_dim: int = 4) -> DCGANGenerator:
    """8x8 one-channel images: ConvT(4->8) + BN + ReLU + ConvT(8->1) + tanh."""
    return DCGANGenerator(latent_dim, (1, 8, 8), base_width=8)


def last_state(run_dir: Path) -> dict[str, Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


# -- minibatch discrimination -------------------------------------------------------------
def hand_layer(exclude_self: bool) -> MinibatchDiscrimination:
    """A = 2, B = 2, C = 2: M_{i,0} = (f_i0, f_i1), M_{i,1} = (f_i0, f_i0 - f_i1)."""
    layer = MinibatchDiscrimination(2, num_kernels=2, kernel_dim=2, exclude_self=exclude_self)
    t = torch.zeros(2, 2, 2, dtype=torch.float64)
    t[:, 0, :] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t[:, 1, :] = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    layer.T = nn.Parameter(t)
    return layer


@pytest.mark.parametrize("exclude_self", [False, True])
def test_minibatch_features_match_a_hand_computation(exclude_self: bool) -> None:
    f = torch.tensor([[0.0, 0.0], [1.0, 2.0], [0.5, -1.0]], dtype=torch.float64)
    # M_{.,0}: (0, 0), (1, 2), (0.5, -1)   -> L1: d01 = 3, d02 = 1.5, d12 = 3.5
    # M_{.,1}: (0, 0), (1, -1), (0.5, 1.5) -> L1: d01 = 2, d02 = 2,   d12 = 3
    e = math.exp
    self_term = 0.0 if exclude_self else 1.0
    expected = torch.tensor(
        [
            [e(-3) + e(-1.5), e(-2) + e(-2)],
            [e(-3) + e(-3.5), e(-2) + e(-3)],
            [e(-1.5) + e(-3.5), e(-2) + e(-3)],
        ],
        dtype=torch.float64,
    ) + self_term
    layer = hand_layer(exclude_self)
    assert_close(layer.similarity(f), expected, **TOL64)
    out = layer(f)
    assert out.shape == (3, 4)
    assert torch.equal(out[:, :2], f)
    assert_close(out[:, 2:], expected, **TOL64)


@pytest.mark.parametrize(("exclude_self", "value"), [(False, 5.0), (True, 4.0)])
def test_a_collapsed_batch_gives_n_exactly(exclude_self: bool, value: float) -> None:
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(8, num_kernels=3, kernel_dim=4, exclude_self=exclude_self)
    collapsed = torch.randn(1, 8).expand(5, 8)
    assert torch.equal(layer.similarity(collapsed), torch.full((5, 3), value))
    # A diverse batch does not (the check can fail).
    diverse = layer.similarity(torch.randn(5, 8) * 10)
    assert (diverse < value - 0.5).all()


def test_minibatch_discrimination_replaces_the_head_of_d() -> None:
    torch.manual_seed(0)
    module = make_module(MLPGenerator(2, (2,), hidden_dim=8, num_layers=1), 2,
                         [MinibatchDiscriminationTrick(num_kernels=3, kernel_dim=2)])
    d = module.discriminator
    assert isinstance(d, MinibatchDiscriminator)
    assert d.feature_dim == 16 + 3
    assert d.body.head_linear is None  # the original head is dropped
    x = torch.randn(6, 2)
    f = d.features(x)
    assert f.shape == (6, 19)
    assert torch.equal(f[:, :16], d.body.features(x))
    assert_close(f[:, 16:], d.mbd.similarity(d.body.features(x)), **TOL32)
    logits = d(x)
    assert logits.shape == (6,)
    assert_close(logits, f @ d.head_linear.weight[0] + d.head_linear.bias, **TOL32)
    body = sum(p.numel() for p in d.body.parameters())
    assert body == (2 * 16 + 16) + (16 * 16 + 16)
    assert sum(p.numel() for p in d.parameters()) == body + 16 * 3 * 2 + (19 + 1)


def test_minibatch_discrimination_must_come_before_spectral_norm() -> None:
    gen = MLPGenerator(2, (2,), hidden_dim=8, num_layers=1)
    with pytest.raises(GanlabError, match="before spectral_norm"):
        make_module(gen, 2, [SpectralNorm(), MinibatchDiscriminationTrick()])


def test_minibatch_discrimination_real_run(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg("tricks=[minibatch_discrimination]", *QUICK, out=tmp_path / "r"))
    assert metrics["iterations"] == 4
    state = last_state(tmp_path / "r")
    assert state["discriminator.mbd.T"].shape == (128, 16, 5)
    assert "discriminator.body.head_linear.weight" not in state


# -- virtual batch norm -------------------------------------------------------------------
def test_vbn_formula_on_a_hand_example_vectors() -> None:
    eps = 1e-5
    vbn = VirtualBatchNorm(1, reference_size=2, eps=eps).double()
    with torch.no_grad():
        vbn.weight.fill_(2.0)
        vbn.bias.fill_(0.5)
    x = torch.tensor([[1.0], [3.0], [5.0]], dtype=torch.float64)  # reference 1, 3; input 5
    # reference: mu = 2, E[x^2] = 5, var = 1
    # input: mu = 2/3*2 + 1/3*5 = 3, E[x^2] = 2/3*5 + 1/3*25 = 35/3, var = 35/3 - 9 = 8/3
    expected = torch.tensor(
        [[-1 / math.sqrt(1 + eps) * 2 + 0.5], [1 / math.sqrt(1 + eps) * 2 + 0.5],
         [2 / math.sqrt(8 / 3 + eps) * 2 + 0.5]],
        dtype=torch.float64,
    )
    assert_close(vbn(x), expected, **TOL64)
    # Batch norm of the same three rows (mean 3) differs (the check can fail).
    bn = nn.functional.batch_norm(x, None, None, training=True, eps=eps) * 2 + 0.5
    assert (bn - expected).abs().max() > 0.1


def test_vbn_formula_on_a_hand_example_images() -> None:
    vbn = VirtualBatchNorm(1, reference_size=2, eps=0.0, affine=False).double()
    x = torch.tensor([[[[0.0, 2.0]]], [[[2.0, 4.0]]], [[[1.0, 5.0]]]], dtype=torch.float64)
    # reference over batch and positions: mu = 2, E[x^2] = 24/4 = 6, var = 2
    # input (1, 5): own mean 3, own E[x^2] 13 -> mu = 4/3 + 1 = 7/3, E[x^2] = 4 + 13/3 = 25/3,
    # var = 25/3 - 49/9 = 26/9
    out = vbn(x)
    ref = (torch.tensor([[0.0, 2.0], [2.0, 4.0]], dtype=torch.float64) - 2) / math.sqrt(2)
    assert_close(out[:2, 0, 0], ref, **TOL64)
    live = (torch.tensor([1.0, 5.0], dtype=torch.float64) - 7 / 3) / math.sqrt(26 / 9)
    assert_close(out[2, 0, 0], live, **TOL64)


def vbn_reference(x: Tensor, n: int, eps: float, detach_reference: bool = False) -> Tensor:
    """The live rows of VBN written out (Salimans et al. 2016 §3.5), gamma = 1, beta = 0."""
    ref = x[:n].detach() if detach_reference else x[:n]
    rows = []
    for xi in x[n:]:
        mean = n / (n + 1) * ref.mean(0) + xi / (n + 1)
        mean_sq = n / (n + 1) * ref.pow(2).mean(0) + xi.pow(2) / (n + 1)
        rows.append((xi - mean) / torch.sqrt(mean_sq - mean.pow(2) + eps))
    return torch.stack(rows)


def test_vbn_gradients_flow_through_the_reference_statistics() -> None:
    vbn = VirtualBatchNorm(3, reference_size=4, eps=1e-5).double()
    x = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    (grad,) = torch.autograd.grad(vbn(x)[4:].pow(2).sum(), x)
    (expected,) = torch.autograd.grad(vbn_reference(x, 4, 1e-5).pow(2).sum(), x)
    assert_close(grad, expected, **TOL64)
    # The reference rows get a gradient only through the statistics (the check can fail).
    (cut,) = torch.autograd.grad(vbn_reference(x, 4, 1e-5, detach_reference=True).pow(2).sum(), x)
    assert torch.equal(cut[:4], torch.zeros(4, 3, dtype=torch.float64))
    assert float(expected[:4].abs().min()) > 1e-6


@pytest.mark.parametrize("training", [True, False])
def test_vbn_output_does_not_depend_on_the_rest_of_the_batch(training: bool) -> None:
    torch.manual_seed(0)
    module = make_module(tiny_dcgan_generator(), 4, [VirtualBatchNormTrick(reference_size=16)],
                         data_shape=(1, 8, 8))
    g = module.generator
    assert isinstance(g, VirtualBatchNormGenerator)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    assert sum(isinstance(m, VirtualBatchNorm) for m in g.modules()) == 1
    g.train(training)
    z1, z2, z3, z4 = torch.randn(4, 1, 4)
    a = g(torch.cat([z1, z2, z3]))
    b = g(torch.cat([z1, z4]))
    assert a.shape == (3, 1, 8, 8)
    assert_close(a[0], b[0], atol=1e-6, rtol=0)
    # No running statistics: training and evaluation give the same sample.
    g.train(not training)
    assert_close(g(z1), a[:1], atol=1e-6, rtol=0)
    # Plain batch norm in training mode does depend on the batch (the check can fail).
    plain = tiny_dcgan_generator().train()
    assert (plain(torch.cat([z1, z2, z3]))[0] - plain(torch.cat([z1, z4]))[0]).abs().max() > 1e-3


def test_vbn_copies_the_batch_norm_parameters() -> None:
    torch.manual_seed(0)
    gen = tiny_dcgan_generator()
    bn = gen.net[1]
    with torch.no_grad():
        bn.bias.normal_()
    weight, bias = bn.weight.detach().clone(), bn.bias.detach().clone()
    module = make_module(gen, 4, [VirtualBatchNormTrick(reference_size=8)], data_shape=(1, 8, 8))
    vbn = module.generator.net.net[1]
    assert isinstance(vbn, VirtualBatchNorm)
    assert torch.equal(vbn.weight, weight) and torch.equal(vbn.bias, bias)
    assert vbn.eps == bn.eps and vbn.reference_size == 8


def test_vbn_reference_batch_is_saved_and_restored() -> None:
    torch.manual_seed(0)
    trick = VirtualBatchNormTrick(reference_size=8, seed=3)
    module = make_module(tiny_dcgan_generator(), 4, [trick], data_shape=(1, 8, 8))
    drawn = module.sample_z(8, torch.Generator().manual_seed(3))
    state = trick.state_dict()
    assert torch.equal(state["reference_z"], drawn)
    assert torch.equal(module.state_dict()["generator.reference_z"], drawn)

    other = VirtualBatchNormTrick(reference_size=8, seed=4)
    module2 = make_module(tiny_dcgan_generator(), 4, [other], data_shape=(1, 8, 8))
    module2.generator.net.load_state_dict(module.generator.net.state_dict())
    z = torch.randn(3, 4)
    assert (module2.generator(z) - module.generator(z)).abs().max() > 1e-4  # can fail
    other.load_state_dict(state)
    assert torch.equal(module2.generator.reference_z, drawn)
    assert_close(module2.generator(z), module.generator(z), atol=1e-6, rtol=0)


def test_vbn_needs_a_generator_with_batch_norm(make_cfg) -> None:
    cfg = make_cfg("tricks=[virtual_batch_norm]")
    with pytest.raises(GanlabError) as err:
        build_module(cfg, build_datamodule(cfg))
    assert str(err.value) == (
        "virtual_batch_norm needs a generator with batch norm layers (e.g. generator=dcgan); "
        "generator 'mlp' has none"
    )


def test_vbn_must_come_before_ema() -> None:
    with pytest.raises(GanlabError, match="before ema"):
        make_module(tiny_dcgan_generator(), 4, [EMA(), VirtualBatchNormTrick()],
                    data_shape=(1, 8, 8))


def test_vbn_real_run_with_dcgan(make_cfg, tmp_path: Path, classifiers) -> None:
    out = tmp_path / "vbn"
    metrics = train(make_cfg(*DCGAN_TINY, "tricks=[virtual_batch_norm]", out=out))
    assert metrics["iterations"] == 2
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    ref = ckpt["ganlab"]["tricks"]["virtual_batch_norm"]["reference_z"]
    assert ref.shape == (64, 64)
    assert torch.equal(ckpt["state_dict"]["generator.reference_z"], ref)
    assert not any(k.startswith("generator.") and "running_mean" in k for k in ckpt["state_dict"])
    assert any(k.startswith("discriminator.") and "running_mean" in k for k in ckpt["state_dict"])


# -- spectral norm ------------------------------------------------------------------------
def weight_matrix(m: nn.Module | Tensor, transposed: bool = False) -> Tensor:
    """W as Miyato et al. reshape it: (out, in * kh * kw); ConvTranspose2d stores (in, out, ...)."""
    if isinstance(m, nn.Module):
        transposed, m = isinstance(m, nn.ConvTranspose2d), m.weight
    w = m.detach()
    return (w.movedim(1, 0) if transposed else w).flatten(1)


def test_spectral_norm_makes_the_largest_singular_value_one() -> None:
    torch.manual_seed(0)
    gen = MLPGenerator(2, (2,), hidden_dim=8, num_layers=1)
    module = make_module(gen, 2, [SpectralNorm(n_power_iterations=10)])
    d = module.discriminator
    layers = [m for m in d.modules() if isinstance(m, nn.Linear)]
    assert len(layers) == 3
    with torch.no_grad():
        for m in layers:
            m.parametrizations.weight.original.mul_(3.0)
    raw = [float(torch.linalg.matrix_norm(weight_matrix(m.parametrizations.weight.original), ord=2))
           for m in layers]
    assert all(s > 1.5 for s in raw), raw  # unnormalised weights fail the check below
    d.train()
    for _ in range(20):  # 200 power iterations
        d(torch.randn(8, 2))
    d.eval()  # reading the weight no longer iterates
    for m in layers:
        sigma = float(torch.linalg.matrix_norm(weight_matrix(m), ord=2))
        assert abs(sigma - 1.0) < 1e-4, sigma
    # G is untouched.
    assert not any(hasattr(m, "parametrizations") for m in module.generator.modules())


def test_spectral_norm_of_convolutions() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3), nn.ConvTranspose2d(6, 4, 4, 2, 1))
    assert apply_spectral_norm(net, n_power_iterations=10) == 2
    for _ in range(20):
        net(torch.randn(2, 3, 8, 8))
    net.eval()
    for m in net:
        assert abs(float(torch.linalg.matrix_norm(weight_matrix(m), ord=2)) - 1.0) < 1e-4


def test_spectral_norm_real_run(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg("tricks=[spectral_norm]", *QUICK, out=tmp_path / "sn"))
    assert metrics["iterations"] == 4
    state = last_state(tmp_path / "sn")
    assert "discriminator.body.1.parametrizations.weight.original" in state
    assert "discriminator.head_linear.parametrizations.weight.original" in state
    assert "discriminator.body.1.weight" not in state


# -- EMA ----------------------------------------------------------------------------------
def params(net: nn.Module) -> Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def set_params(net: nn.Module, values: Tensor) -> None:
    torch.nn.utils.vector_to_parameters(values, net.parameters())


def test_ema_matches_the_closed_form() -> None:
    torch.manual_seed(0)
    beta = 0.9
    module = make_module(MLPGenerator(2, (2,), hidden_dim=4, num_layers=1), 2, [EMA(beta)])
    trick = module.tricks.items[0]
    theta0 = params(module.generator)
    assert torch.equal(params(module.generator_ema), theta0)
    assert not any(p.requires_grad for p in module.generator_ema.parameters())
    thetas = [torch.randn_like(theta0) for _ in range(3)]
    for t, theta in enumerate(thetas):
        set_params(module.generator, theta)
        module.iteration = t
        trick.after_g_step(module)
    expected = beta**3 * theta0 + (1 - beta) * (
        beta**2 * thetas[0] + beta * thetas[1] + thetas[2]
    )
    assert_close(params(module.generator_ema), expected, **TOL32)
    assert (params(module.generator_ema) - thetas[2]).abs().max() > 0.1  # can fail


def test_ema_copies_before_start_iteration_and_copies_buffers() -> None:
    torch.manual_seed(0)
    beta = 0.5
    module = make_module(tiny_dcgan_generator(), 4, [EMA(beta, start_iteration=2)],
                         data_shape=(1, 8, 8))
    trick = module.tricks.items[0]
    theta0 = params(module.generator)
    thetas = [torch.randn_like(theta0) for _ in range(3)]
    bn = module.generator.net[1]
    for t, theta in enumerate(thetas):
        set_params(module.generator, theta)
        bn.running_mean.normal_()
        module.iteration = t
        trick.after_g_step(module)
        if t < 2:
            assert torch.equal(params(module.generator_ema), theta)
        assert torch.equal(module.generator_ema.net[1].running_mean, bn.running_mean)
    assert_close(params(module.generator_ema), beta * thetas[1] + (1 - beta) * thetas[2],
                 **TOL32)


def test_ema_is_the_eval_generator() -> None:
    torch.manual_seed(0)
    module = make_module(MLPGenerator(2, (2,), hidden_dim=4, num_layers=1), 2, [EMA(0.5)])
    assert module.eval_generator is module.generator_ema
    set_params(module.generator, torch.randn_like(params(module.generator)))
    module.tricks.items[0].after_g_step(module)
    z = module.sample_z(5, torch.Generator().manual_seed(7))
    samples = module.generate(5, seed=7)
    assert_close(samples, module.generator_ema(z), **TOL32)
    assert (samples - module.generator(z)).abs().max() > 1e-3  # can fail


def test_ema_real_run_and_resume(make_cfg, tmp_path: Path) -> None:
    common = ["tricks=[ema]", "metrics.every_n_iterations=0", "trainer.deterministic=true",
              "callbacks.checkpoint.every_n_iterations=2",
              "callbacks.checkpoint.keep_every_n_iterations=2"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    train(make_cfg("train.iterations=4", *common, out=full))
    ckpt = full / "checkpoints" / "iter_2.ckpt"
    train(make_cfg("train.iterations=4", *common, f"ckpt_path={ckpt}", out=resumed))
    a, b = last_state(full), last_state(resumed)
    ema_keys = [k for k in a if k.startswith("generator_ema.")]
    assert len(ema_keys) == len([k for k in a if k.startswith("generator.")]) > 0
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # The average (decay 0.999) lags G after 4 updates.
    assert not torch.equal(a["generator_ema.net.0.weight"], a["generator.net.0.weight"])


# -- TTUR ---------------------------------------------------------------------------------
def test_ttur_sets_the_learning_rates(make_cfg) -> None:
    cfg = make_cfg("tricks=[ttur]")
    g_opt, d_opt = build_module(cfg, build_datamodule(cfg)).configure_optimizers()
    assert g_opt.param_groups[0]["lr"] == 1e-4
    assert d_opt.param_groups[0]["lr"] == 4e-4
    assert g_opt.param_groups[0]["betas"] == (0.5, 0.999)  # the rest of optim is kept
    cfg = make_cfg("tricks=[ttur]", "tricks.ttur.g_lr=3e-5", "tricks.ttur.d_lr=7e-4")
    g_opt, d_opt = build_module(cfg, build_datamodule(cfg)).configure_optimizers()
    assert (g_opt.param_groups[0]["lr"], d_opt.param_groups[0]["lr"]) == (3e-5, 7e-4)
    cfg = make_cfg("optim=adam")  # without the trick both are optim's 2e-4 (the test can fail)
    g_opt, d_opt = build_module(cfg, build_datamodule(cfg)).configure_optimizers()
    assert g_opt.param_groups[0]["lr"] == d_opt.param_groups[0]["lr"] == 2e-4


def test_ttur_wraps_the_optimizer_factories() -> None:
    module = make_module(MLPGenerator(2, (2,), hidden_dim=4, num_layers=1), 2,
                         [TTUR(g_lr=1e-3, d_lr=5e-3)])
    g_opt, d_opt = module.configure_optimizers()
    assert isinstance(g_opt, torch.optim.Adam) and isinstance(d_opt, torch.optim.Adam)
    assert (g_opt.param_groups[0]["lr"], d_opt.param_groups[0]["lr"]) == (1e-3, 5e-3)
    assert {id(p) for p in g_opt.param_groups[0]["params"]} == {
        id(p) for p in module.generator.parameters()
    }
    with pytest.raises(GanlabError, match="d_lr must be > 0"):
        TTUR(d_lr=0.0)


# -- composed -----------------------------------------------------------------------------
def test_composed_network_tricks_real_run(make_cfg, tmp_path: Path) -> None:
    out = tmp_path / "composed"
    cfg = make_cfg("tricks=[minibatch_discrimination,spectral_norm,ema,ttur]", *QUICK, out=out)
    assert list(cfg.tricks) == ["minibatch_discrimination", "spectral_norm", "ema", "ttur"]
    metrics = train(cfg)
    assert metrics["iterations"] == 4
    state = last_state(out)
    assert "discriminator.mbd.T" in state
    assert "discriminator.head_linear.parametrizations.weight.original" in state
    assert any(k.startswith("generator_ema.") for k in state)
