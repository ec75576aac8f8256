"""virtual_batch_norm through the real step: G's batch norm becomes virtual batch norm, so in
training a sample of G no longer depends on the rest of its batch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.core.errors import GanlabError
from ganlab.tricks.ema import EMA
from ganlab.tricks.virtual_batch_norm import (
    VirtualBatchNorm,
    VirtualBatchNormGenerator,
    VirtualBatchNormTrick,
)
from tricks.runs import DCGAN, baseline, differ, players, run
from tricks.unit_helpers import (
    DCGAN_TINY,
    TOL64,
    make_module,
    tiny_dcgan_generator,
)


def first_sample(gen: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    gen.train()
    with torch.no_grad():
        return gen(z)[0]


def test_virtual_batch_norm_makes_samples_independent_of_their_batch(make_cfg,
                                                                     tmp_path) -> None:
    pytest.importorskip("mlxtend")
    base = baseline(make_cfg, tmp_path / "base", *DCGAN)
    vbn = run(make_cfg, tmp_path / "vbn", *DCGAN, "tricks=[virtual_batch_norm]",
              "tricks.virtual_batch_norm.reference_size=16")
    assert differ(players(base.final, "discriminator."), players(vbn.final, "discriminator."))
    z = vbn.g_calls[1].input  # G's step
    moved = torch.cat([z[:1], z[1:] * 3.0 + 1.0])
    trained, plain = vbn.module.generator, base.module.generator
    torch.testing.assert_close(first_sample(trained, z), first_sample(trained, moved))
    assert not torch.allclose(first_sample(plain, z), first_sample(plain, moved), atol=1e-3)


# -- formulas by hand -------------------------------------------
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
        "trick 'virtual_batch_norm' needs generator.batch_norm, which generator 'mlp' does not "
        "provide"
    )


def test_ema_averages_the_virtual_batch_norm_generator_in_either_order() -> None:
    """EMA's stage is the last: it copies G after virtual batch norm changed it."""
    for tricks in ([EMA(), VirtualBatchNormTrick()], [VirtualBatchNormTrick(), EMA()]):
        module = make_module(tiny_dcgan_generator(), 4, tricks, data_shape=(1, 8, 8))
        assert isinstance(module.generator_ema, VirtualBatchNormGenerator)


def test_vbn_real_run_with_dcgan(make_cfg, tmp_path: Path, classifiers) -> None:
    out = tmp_path / "vbn"
    metrics = train(make_cfg(*DCGAN_TINY, "tricks=[virtual_batch_norm]", out=out))
    assert metrics["iterations"] == 2
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    ref = ckpt["ganlab"]["family"]["plugins"]["virtual_batch_norm"]["reference_z"]
    assert ref.shape == (64, 64)
    assert torch.equal(ckpt["state_dict"]["generator.reference_z"], ref)
    assert not any(k.startswith("generator.") and "running_mean" in k for k in ckpt["state_dict"])
    assert any(k.startswith("discriminator.") and "running_mean" in k for k in ckpt["state_dict"])
