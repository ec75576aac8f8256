"""ema through the real step: training is unchanged, generator_ema is the running average and
the samples come from it."""

from __future__ import annotations

from pathlib import Path

import torch
from plugin_helpers import gstep, plugin
from torch import Tensor, nn
from torch.testing import assert_close

from ganlab.app.train import train
from ganlab.nets.mlp import MLPGenerator
from ganlab.tricks.ema import EMA
from tricks.runs import baseline, differ, players, run
from tricks.unit_helpers import (
    TOL32,
    last_state,
    make_module,
    tiny_dcgan_generator,
)


def test_ema_averages_the_generator_and_the_samples_use_it(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base")
    ema = run(make_cfg, tmp_path / "ema", "tricks=[ema]", "tricks.ema.decay=0.5")
    # The average never enters training: G and D end exactly as without the trick.
    for prefix in ("generator.", "discriminator."):
        assert not differ(players(base.final, prefix), players(ema.final, prefix))
    # After one update: theta_ema = 0.5 theta_0 + 0.5 theta_1.
    theta0, theta1 = players(ema.states[0], "generator."), players(ema.final, "generator.")
    average = players(ema.final, "generator_ema.")
    assert len(average) == len(theta1) > 0
    for key, value in theta1.items():
        expected = 0.5 * theta0[key] + 0.5 * value
        assert_close(average["generator_ema." + key.removeprefix("generator.")], expected)
    assert differ({k.removeprefix("generator_ema."): v for k, v in average.items()},
                  {k.removeprefix("generator."): v for k, v in theta1.items()})
    # Samples come from the average, so they differ from the run without it.
    base_samples, ema_samples = base.module.generate(16, seed=3), ema.module.generate(16, seed=3)
    assert not torch.equal(base_samples, ema_samples)
    assert torch.equal(base.module.generate(16, seed=3), base_samples)


# -- formulas by hand -------------------------------------------
def params(net: nn.Module) -> Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def set_params(net: nn.Module, values: Tensor) -> None:
    torch.nn.utils.vector_to_parameters(values, net.parameters())


def test_ema_matches_the_closed_form() -> None:
    torch.manual_seed(0)
    beta = 0.9
    module = make_module(MLPGenerator(2, (2,), hidden_dim=4, num_layers=1), 2, [EMA(beta)])
    trick = plugin(module, "ema")
    theta0 = params(module.generator)
    assert torch.equal(params(module.generator_ema), theta0)
    assert not any(p.requires_grad for p in module.generator_ema.parameters())
    thetas = [torch.randn_like(theta0) for _ in range(3)]
    for t, theta in enumerate(thetas):
        set_params(module.generator, theta)
        trick.after_g_step(gstep(theta, theta, theta, t, players_=module.family.players))
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
    trick = plugin(module, "ema")
    theta0 = params(module.generator)
    thetas = [torch.randn_like(theta0) for _ in range(3)]
    bn = module.generator.net[1]
    for t, theta in enumerate(thetas):
        set_params(module.generator, theta)
        bn.running_mean.normal_()
        trick.after_g_step(gstep(theta, theta, theta, t, players_=module.family.players))
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
    zero = torch.zeros(())
    plugin(module, "ema").after_g_step(gstep(zero, zero, zero, players_=module.family.players))
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
