"""The LAPGAN family: each level's D and G steps move only that level's player, by one SGD step
on the gradient of the hand-written cost on the real pyramid; the iteration is the levels coarse
to fine; determinism, exact resume, building from the config, one-line errors, the pictures and
the parameter counts of the preset and its baseline (ganlab.families.lapgan)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
from family_helpers import (
    assert_sgd_step,
    assert_unchanged,
    check_saved_state_resumes,
    compose_preset,
    context,
    hand_grads,
    restored,
    same_outputs,
    sgd,
    snapshot,
    softplus,
)
from hydra.utils import get_class
from torch import Tensor, nn

from ganlab.app.build import build as instantiate
from ganlab.core.errors import GanlabError
from ganlab.core.family import TrainContext
from ganlab.core.seeds import SAMPLE_SEED
from ganlab.families.lapgan import LAPGAN
from ganlab.nets.lapgan import LaplacianSampler, ResidualDiscriminator, ResidualGenerator, up
from ganlab.nets.mlp import MLPDiscriminator, MLPGenerator

SIDE = 12  # 12 -> 6 -> 3
N = 6


def tiny(seed: int = 0, noise: str = "normal") -> LAPGAN:
    torch.manual_seed(seed)
    gens = [ResidualGenerator((1, SIDE >> k, SIDE >> k), width=3, kernel_size=3)
            for k in range(2)]
    discs = [ResidualDiscriminator((1, SIDE >> k, SIDE >> k), width=3, kernel_size=3)
             for k in range(2)]
    return LAPGAN(MLPGenerator(4, (1, 3, 3), hidden_dim=6, num_layers=1, output="tanh"),
                  MLPDiscriminator((1, 3, 3), hidden_dim=6, num_layers=1), gens, discs,
                  {"generator": sgd, "discriminator": sgd}, latent_dim=4, noise=noise)


def images(seed: int = 1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(N, 1, SIDE, SIDE, generator=g) * 2 - 1


def pyramid(x: Tensor) -> list[Tensor]:
    """The Gaussian pyramid written with the pyramid's ``d`` (tested in tests/nets)."""
    from ganlab.nets.lapgan import down

    return [x, down(x), down(down(x))]


def level_inputs(x: Tensor, level: int) -> tuple[Tensor, Tensor | None]:
    """Real ``(h_k, l_k)`` by hand: ``l_k = u(I_{k+1})``, ``h_k = I_k - l_k``; ``(I_2, None)``."""
    p = pyramid(x)
    if level == 2:
        return p[2], None
    return p[level] - up(p[level + 1]), up(p[level + 1])


def noise(level: int, g: torch.Generator) -> Tensor:
    """The draw the step makes from a copy of the noise generator."""
    return torch.randn(N, 4, generator=g) if level == 2 else \
        torch.randn(N, 1, SIDE >> level, SIDE >> level, generator=g)


def players(nets: dict[str, nn.Module], level: int) -> tuple[Callable, Callable]:
    g, d = nets[f"generator_{level}"], nets[f"discriminator_{level}"]
    if level == 2:
        return (lambda z, _c: g(z)), (lambda x, _c: d(x))
    return g, d


PRESET = "lapgan_mnist_offline"
ALL = [f"{kind}_{k}" for k in (2, 1, 0) for kind in ("generator", "discriminator")]


@pytest.mark.parametrize("level", [2, 1, 0])
def test_discriminator_step_moves_its_level_only(level: int) -> None:
    family, x = tiny(), images()
    ctx = context(family)
    real, cond = level_inputs(x, level)
    z = noise(level, torch.Generator().manual_seed(3))
    before = snapshot(family)

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        g, d = players(nets, level)
        with torch.no_grad():
            fake = g(z, cond)
        return 0.5 * softplus(-d(real, cond)).mean() + 0.5 * softplus(d(fake, cond)).mean()

    grads = hand_grads(cost, family, [f"discriminator_{level}"])
    out = family.discriminator_step(level, real, cond, ctx)
    assert all(p.grad is None for p in family.generators[level].parameters())
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0)
    assert_unchanged(before, family, [r for r in ALL if r != f"discriminator_{level}"])
    old = restored(before, family)
    g, d = players(old, level)
    with torch.no_grad():
        assert out[f"d_loss_{level}"].item() == pytest.approx(cost(old).item(), rel=1e-6)
        assert out[f"D_real_{level}"].item() == pytest.approx(
            torch.sigmoid(d(real, cond)).mean().item(), rel=1e-6)
        assert out[f"D_fake_{level}"].item() == pytest.approx(
            torch.sigmoid(d(g(z, cond), cond)).mean().item(), rel=1e-6)


@pytest.mark.parametrize("level", [2, 1, 0])
def test_generator_step_moves_its_level_only(level: int) -> None:
    family, x = tiny(), images()
    ctx = context(family)
    real, cond = level_inputs(x, level)
    z = noise(level, torch.Generator().manual_seed(3))
    before = snapshot(family)

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        g, d = players(nets, level)
        return 0.5 * softplus(-d(g(z, cond), cond)).mean()

    grads = hand_grads(cost, family, [f"generator_{level}"])
    value = family.generator_step(level, N, cond, ctx, real)
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0)
    assert_unchanged(before, family, [r for r in ALL if r != f"generator_{level}"])
    # D_k took no gradient, and is trainable again afterwards.
    assert all(p.grad is None and p.requires_grad
               for p in family.discriminators[level].parameters())
    old = restored(before, family)
    with torch.no_grad():
        assert value.item() == pytest.approx(cost(old).item(), rel=1e-6)
    assert not value.requires_grad


def test_uniform_noise() -> None:
    family = tiny(noise="uniform")
    g = torch.Generator().manual_seed(0)
    z = family.sample_z(1, 5, g)
    assert torch.equal(z, torch.rand(5, 1, 6, 6, generator=torch.Generator().manual_seed(0))
                       * 2 - 1)
    with pytest.raises(GanlabError, match="^unknown noise 'cauchy'; valid: normal, uniform$"):
        tiny(noise="cauchy")


def test_train_step_is_every_level_coarse_to_fine() -> None:
    x = images()
    a, b = tiny(), tiny()
    ctx_a, ctx_b = context(a), context(b)
    out = a.train_step(([x], [torch.zeros(N, dtype=torch.long)]), ctx_a)
    expected: dict[str, Tensor] = {}
    for level in (2, 1, 0):
        real, cond = level_inputs(x, level)
        expected.update(b.discriminator_step(level, real, cond, ctx_b))
        expected[f"g_loss_{level}"] = b.generator_step(level, N, cond, ctx_b, real)
    assert set(out) == {*expected, "d_loss", "g_loss"}
    assert all(torch.equal(out[k], v) for k, v in expected.items())
    assert out["d_loss"].item() == pytest.approx(
        sum(expected[f"d_loss_{k}"].item() for k in range(3)) / 3, rel=1e-6)
    assert out["g_loss"].item() == pytest.approx(
        sum(expected[f"g_loss_{k}"].item() for k in range(3)) / 3, rel=1e-6)
    assert all(v.dim() == 0 and not v.requires_grad for v in out.values())
    assert_unchanged(snapshot(b), a, ALL)


def test_levels_train_independently() -> None:
    """Level 0's players after an iteration do not depend on the other levels' weights."""
    a, b = tiny(), tiny()
    with torch.no_grad():
        for role in ("generator_2", "discriminator_2", "generator_1", "discriminator_1"):
            for p in b.networks()[role].parameters():
                p.add_(1.0)
    ctx_a, ctx_b = context(a), context(b)
    x = images()
    a.train_step(([x], [x]), ctx_a)
    b.train_step(([x], [x]), ctx_b)
    assert_unchanged(snapshot(a), b, ["generator_0", "discriminator_0"])
    assert not torch.equal(a.generators[1].net[0].weight, b.generators[1].net[0].weight)


def run(family: LAPGAN, ctx: TrainContext, steps: range) -> list[dict[str, Tensor]]:
    return [family.train_step(([images(i)], [torch.zeros(N)]), ctx) for i in steps]


def test_train_step_is_fixed_by_the_seeds() -> None:
    a, b = tiny(), tiny()
    out_a, out_b = run(a, context(a), range(3)), run(b, context(b), range(3))
    assert same_outputs(out_a, out_b)
    assert_unchanged(snapshot(b), a, ALL)
    c = tiny()
    run(c, context(c, noise_seed=4), range(3))
    assert not torch.equal(c.generators[0].net[0].weight, a.generators[0].net[0].weight)


def test_resume_from_saved_state_is_bit_exact() -> None:
    straight, resumed = check_saved_state_resumes(tiny, run)
    assert_unchanged(snapshot(straight), resumed, ALL)


def test_interface() -> None:
    family = tiny()
    assert family.name == "lapgan" and isinstance(family.evaluated, LaplacianSampler)
    assert list(family.networks()) == ALL
    assert list(family.optimizers()) == [f"{kind}_{k}" for k in (2, 1, 0)
                                         for kind in ("discriminator", "generator")]
    assert all(roles == [name] for name, (_, roles) in family.optimizers().items())
    assert family.steps_per_iteration == 6
    # The sampler holds the players themselves.
    assert family.sampler.coarse is family.generators[2]
    assert list(family.sampler.residuals) == family.generators[:2]
    latent = family.sample_latent(5, torch.Generator().manual_seed(0))
    assert torch.equal(latent, torch.randn(5, 4 + 36 + 144,
                                           generator=torch.Generator().manual_seed(0)))
    assert torch.equal(family.decode(latent), family.sampler(latent))
    assert family.tags() == ["model=lapgan", "levels=2", "loss=non_saturating"]
    counts = family.parameter_counts()
    assert counts["total"] == sum(p.numel() for net in family.networks().values()
                                  for p in net.parameters())


def test_level_picture() -> None:
    family = tiny()
    sampler = SimpleNamespace(device=torch.device("cpu"))
    grid, per_row = family.pictures(sampler, None)["pyramid"]
    assert per_row == 7 and grid.shape == (8 * 7, 1, SIDE, SIDE)
    latent = family.sample_latent(8, torch.Generator().manual_seed(SAMPLE_SEED))
    family.sampler.eval()
    with torch.no_grad():
        steps = family.sampler.levels(latent)
    rows = grid.view(8, 7, 1, SIDE, SIDE)
    near = nn.functional.interpolate
    torch.testing.assert_close(rows[:, 0], near(steps[0]["image"], size=(SIDE, SIDE)).clamp(-1, 1))
    torch.testing.assert_close(rows[:, 4], near(steps[2]["condition"], size=(SIDE, SIDE)).clamp(
        -1, 1))
    h = steps[2]["residual"]
    torch.testing.assert_close(rows[:, 5], h / h.abs().max())
    torch.testing.assert_close(rows[:, 6], steps[2]["image"].clamp(-1, 1))
    assert torch.equal(rows[:, 6], family.sampler(latent))


# -- building from the config -----------------------------------------------------------------

def digits(shape: tuple[int, ...] = (1, 28, 28)) -> SimpleNamespace:
    return SimpleNamespace(data_shape=shape, num_classes=10)


def test_from_config_builds_the_preset() -> None:
    cfg = compose_preset(PRESET)
    family = LAPGAN.from_config(cfg, digits(), instantiate)
    assert family.levels == 2 and family.latent_dim == 64
    assert [g.data_shape for g in family.generators[:2]] == [(1, 28, 28), (1, 14, 14)]
    assert family.generators[2].data_shape == (1, 7, 7)
    assert family.discriminators[2].data_shape == (1, 7, 7)
    assert [d.data_shape for d in family.discriminators[:2]] == [(1, 28, 28), (1, 14, 14)]
    assert isinstance(family.generators[2].net[-1], nn.Tanh)
    opt = family.factories["generator"](family.generators[0].parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 2e-4
    assert family.loss.name == "non_saturating" and family.total_iterations == 2000
    assert cfg.data._target_.endswith("MNISTOffline") and cfg.train.iterations == 2000


def test_cifar10_preset_is_32_16_8() -> None:
    cfg = compose_preset("lapgan_cifar10", ["model.coarse.generator.hidden_dim=8",
                                            "model.coarse.discriminator.hidden_dim=8",
                                            "model.residual.generator.width=4",
                                            "model.residual.discriminator.width=4"])
    family = LAPGAN.from_config(cfg, digits((3, 32, 32)), instantiate)
    assert [g.data_shape for g in family.generators] == [(3, 32, 32), (3, 16, 16), (3, 8, 8)]
    assert cfg.data._target_.endswith("CIFAR10") and cfg.train.noise == "uniform"
    latent = family.sample_latent(2, torch.Generator().manual_seed(0))
    assert family.decode(latent).shape == (2, 3, 32, 32)


@pytest.mark.parametrize(("overrides", "shape", "message"), [
    ([], (1, 30, 30), r"^model.levels=2 needs image sides divisible by 2\^2 = 4; got "
                      r"data_shape \(1, 30, 30\)$"),
    (["model.levels=3"], (1, 28, 28), r"divisible by 2\^3 = 8"),
    (["tricks=[ema]"], (1, 28, 28), r"^model=lapgan runs no tricks; got tricks=\['ema'\]$"),
    (["loss=wgan_gp"], (1, 28, 28), r"^model=lapgan runs no regularisers; loss WGAN brings "
                                    r"gradient_penalty$"),
    (["conditioning=concat"], (1, 28, 28), r"^model=lapgan is unconditional; set "
                                           r"conditioning=null$"),
    (["train.noise=cauchy"], (1, 28, 28), r"^unknown noise 'cauchy'; valid: normal, uniform$"),
    (["model.coarse.generator._target_=ganlab.nets.dcgan.DCGANGenerator",
      "~model.coarse.generator.hidden_dim", "~model.coarse.generator.num_layers",
      "~model.coarse.generator.activation", "~model.coarse.generator.output"], (1, 28, 28),
     r"dcgan needs square images of side 4·2\^n or 7·2\^n"),
    (["model.residual.discriminator._target_=ganlab.nets.mlp.MLPDiscriminator",
      "~model.residual.discriminator.width", "~model.residual.discriminator.kernel_size"],
     (1, 28, 28), r"^model.residual.discriminator fails at level 0: "),
])
def test_from_config_bad_input_is_one_line(overrides: list[str], shape: tuple[int, ...],
                                           message: str) -> None:
    cfg = compose_preset(PRESET, overrides)
    with pytest.raises(GanlabError, match=message) as err:
        LAPGAN.from_config(cfg, digits(shape), instantiate)
    assert "\n" not in str(err.value)


def test_preset_and_baseline_have_similar_parameter_counts() -> None:
    """The two presets of README's table: totals within 10 % of each other."""
    totals = {}
    for preset in ("lapgan_mnist_offline", "lapgan_baseline_mnist_offline"):
        cfg = compose_preset(preset)
        family = get_class(cfg.model._target_).from_config(cfg, digits(), instantiate)
        totals[preset] = sum(p.numel() for net in family.networks().values()
                             for p in net.parameters())
    lap, base = totals.values()
    assert 0.9 < lap / base < 1.1, totals
    # Same data, batch, iterations and loss.
    a, b = (compose_preset(p) for p in totals)
    assert (a.data, a.train, a.loss) == (b.data, b.train, b.loss)
