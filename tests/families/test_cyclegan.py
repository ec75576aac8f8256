"""The CycleGAN family: the image pool's semantics, each phase trains only its players by one
optimizer step on the hand-written cost's gradient, the phases' order, determinism and exact
resume (the pools included), building from the config, metrics and pictures by hand."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from family_helpers import (
    assert_sgd_step,
    assert_unchanged,
    compose_preset,
    context,
    copies,
    hand_grads,
    resumed_context,
    same_outputs,
    saved_state,
    sgd,
    snapshot,
)
from torch import Tensor, nn

from ganlab.app.build import build as instantiate
from ganlab.core.errors import GanlabError
from ganlab.core.family import TrainContext
from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.families.cyclegan import CycleGAN, ImagePool
from ganlab.metrics.classifier import ClassifierExtractor, DigitClassifier
from ganlab.nets.cyclegan import PatchDiscriminator, ResnetTranslator

SHAPE = (1, 8, 8)
ROLES = ["generator_xy", "generator_yx", "discriminator_y", "discriminator_x"]


def tiny(seed: int = 0, cycle: float = 10.0, identity: float = 0.0, pool: int = 50,
         **kwargs: Any) -> CycleGAN:
    torch.manual_seed(seed)
    return CycleGAN(
        ResnetTranslator(SHAPE, width=4, num_downsampling=1, num_blocks=1),
        ResnetTranslator(SHAPE, width=4, num_downsampling=1, num_blocks=1),
        PatchDiscriminator(SHAPE, width=4, num_layers=1),
        PatchDiscriminator(SHAPE, width=4, num_layers=1),
        {"generators": sgd, "discriminator_y": sgd, "discriminator_x": sgd},
        cycle_weight=cycle, identity_weight=identity, pool_size=pool, **kwargs)


def batch(seed: int = 1, n: int = 6) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g) * 2 - 1, torch.rand(n, *SHAPE, generator=g) * 2 - 1


def mean_abs(a: Tensor, b: Tensor) -> Tensor:
    return (a - b).abs().sum() / a.numel()


def squares(t: Tensor, target: float) -> Tensor:
    return ((t - target) ** 2).sum() / t.numel()


# -- the image pool ---------------------------------------------------------------------------

def images(n: int, start: int = 0) -> Tensor:
    """``n`` images, image ``i`` filled with ``start + i``."""
    return (torch.arange(start, start + n, dtype=torch.float32)[:, None, None, None]
            .expand(n, *SHAPE).clone())


def values(t: Tensor) -> list[int]:
    return [int(v) for v in t[:, 0, 0, 0].tolist()]


def test_pool_stores_the_first_images_then_swaps_half_of_the_time() -> None:
    pool = ImagePool(size=4)
    noise = torch.Generator().manual_seed(7)
    assert values(pool.query(images(3), noise)) == [0, 1, 2]
    # Each query draws n uniforms, then n indices, whether it uses them or not.
    twin = torch.Generator().manual_seed(7)
    torch.rand(3, generator=twin), torch.randint(4, (3,), generator=twin)
    u = torch.rand(5, generator=twin).tolist()
    ids = torch.randint(4, (5,), generator=twin).tolist()
    got = values(pool.query(images(5, start=10), noise))
    # By hand, image after image: the first fills the last free place (returned as it is);
    # then p > 0.5 returns a stored image and stores the new one in its place.
    stored, expected = [0, 1, 2, 10], [10]
    for value, p, k in zip(range(11, 15), u[1:], ids[1:], strict=True):
        if p > 0.5:
            expected.append(stored[k])
            stored[k] = value
        else:
            expected.append(value)
    assert got == expected and values(torch.stack(pool.images)) == stored
    assert 0 < sum(p > 0.5 for p in u[1:]) < 4  # both branches ran (seed 7)
    assert torch.equal(noise.get_state(), twin.get_state())


def test_pool_swaps_half_of_the_images_once_full() -> None:
    pool = ImagePool(size=50)
    noise = torch.Generator().manual_seed(0)
    pool.query(images(50, start=-50), noise)  # full
    new = images(10_000)
    returned = values(pool.query(new, noise))
    swapped = sum(r != v for r, v in zip(returned, range(10_000), strict=True))
    # Binomial(10,000, 1/2): standard deviation 50; 4 standard deviations either side.
    assert abs(swapped - 5_000) < 200


def test_pool_returns_detached_copies_and_size_zero_is_no_pool() -> None:
    fake = images(2).requires_grad_()
    pool = ImagePool(size=2)
    out = pool.query(fake * 1, torch.Generator())
    assert not out.requires_grad and values(out) == [0, 1]
    fake.data += 5  # the stored images are copies
    assert values(torch.stack(pool.images)) == [0, 1]
    none = ImagePool(size=0)
    g = torch.Generator().manual_seed(1)
    state = g.get_state()
    assert torch.equal(none.query(images(3), g), images(3))
    assert torch.equal(g.get_state(), state) and none.images == []


def test_pool_state_round_trip_and_bad_size() -> None:
    pool = ImagePool(size=3)
    assert pool.state_dict() == {"size": 3, "images": None}
    pool.query(images(2), torch.Generator())
    state = pool.state_dict()
    other = ImagePool(size=3)
    other.load_state_dict(state)
    assert values(torch.stack(other.images)) == [0, 1]
    with pytest.raises(GanlabError, match="holds 3 images but model.pool_size is 5"):
        ImagePool(size=5).load_state_dict(state)
    with pytest.raises(GanlabError, match="model.pool_size must be an integer >= 0; got -1"):
        ImagePool(size=-1)


# -- the phases -------------------------------------------------------------------------------

@pytest.mark.parametrize(("cycle", "identity"), [(10.0, 0.0), (0.0, 0.0), (10.0, 5.0)],
                         ids=["cycle", "no_cycle", "identity"])
def test_generator_phase_steps_g_and_f_only(cycle: float, identity: float) -> None:
    family = tiny(cycle=cycle, identity=identity)
    ctx = context(family)
    x, y = batch()
    before = snapshot(family)
    old = copies(family)

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        g, f = nets["generator_xy"], nets["generator_yx"]
        gx, fy = g(x), f(y)
        total = squares(nets["discriminator_y"](gx), 1.0) + \
            squares(nets["discriminator_x"](fy), 1.0)
        total = total + cycle * (mean_abs(f(gx), x) + mean_abs(g(fy), y))
        return total + identity * (mean_abs(g(y), y) + mean_abs(f(x), x))

    grads = hand_grads(cost, family, ["generator_xy", "generator_yx"])
    out, fake_y, fake_x = family.generator_phase(x, y, ctx)
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0, moved="any")
    assert_unchanged(before, family, ["discriminator_y", "discriminator_x"])
    with torch.no_grad():
        assert out["g_cost"].item() == pytest.approx(cost(old).item(), rel=1e-6)
        assert out["adv_g"].item() == pytest.approx(
            squares(old["discriminator_y"](old["generator_xy"](x)), 1.0).item(), rel=1e-6)
        # The fakes D will see: of the weights before the step.
        assert torch.equal(fake_y, old["generator_xy"](x))
        assert torch.equal(fake_x, old["generator_yx"](y))
    assert ("cycle_x" in out) == (cycle > 0) and ("identity" in out) == (identity > 0)
    if cycle:
        assert out["cycle_y"].item() == pytest.approx(mean_abs(
            old["generator_xy"](old["generator_yx"](y)), y).item(), rel=1e-6)
    assert not fake_y.requires_grad and all(not v.requires_grad for v in out.values())


@pytest.mark.parametrize("name", ["discriminator_y", "discriminator_x"])
def test_discriminator_phase_steps_its_discriminator_only(name: str) -> None:
    family = tiny()
    ctx = context(family)
    real, fake = batch()
    before = snapshot(family)

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        d = nets[name]
        return 0.5 * squares(d(real), 1.0) + 0.5 * squares(d(fake), 0.0)

    grads = hand_grads(cost, family, [name])
    value = family.discriminator_phase(name, real, fake, ctx)
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0, moved="any")
    others = [r for r in ROLES if r != name]
    assert_unchanged(before, family, others)
    old = copies(family)
    old[name].load_state_dict(before[name])
    with torch.no_grad():
        assert value.item() == pytest.approx(cost(old).item(), rel=1e-6)
    # The fakes went into this D's pool (the first 50 are stored), not the other's.
    pool, other = (family.pool_y, family.pool_x) if name == "discriminator_y" else \
        (family.pool_x, family.pool_y)
    assert torch.equal(torch.stack(pool.images), fake) and other.images == []


def test_discriminator_reads_the_pools_answer() -> None:
    family = tiny(pool=2)
    family.pool_y.images = [torch.full(SHAPE, 0.5), torch.full(SHAPE, -0.5)]
    ctx = context(family, noise_seed=5)
    real, fake = batch()
    twin = copy.deepcopy(family.pool_y)
    history = twin.query(fake, torch.Generator().manual_seed(5))
    assert not torch.equal(history, fake)  # some stored images come back (seed 5)
    d = copy.deepcopy(family.discriminator_y)
    with torch.no_grad():
        expected = 0.5 * squares(d(real), 1.0) + 0.5 * squares(d(history), 0.0)
    value = family.discriminator_phase("discriminator_y", real, fake, ctx)
    assert value.item() == pytest.approx(expected.item(), rel=1e-6)


def test_train_step_is_the_three_phases_in_order() -> None:
    x, y = batch()
    a, b = tiny(identity=5.0), tiny(identity=5.0)
    ctx_a, ctx_b = context(a), context(b)
    out = a.train_step(([x], [y]), ctx_a)
    g, fake_y, fake_x = b.generator_phase(x, y, ctx_b)
    dy = b.discriminator_phase("discriminator_y", y, fake_y, ctx_b)
    dx = b.discriminator_phase("discriminator_x", x, fake_x, ctx_b)
    assert set(out) == {"adv_g", "adv_f", "cycle_x", "cycle_y", "identity", "g_cost",
                        "d_y_loss", "d_x_loss"}
    assert all(v.dim() == 0 and not v.requires_grad for v in out.values())
    assert all(torch.equal(out[k], g[k]) for k in g)
    assert torch.equal(out["d_y_loss"], dy) and torch.equal(out["d_x_loss"], dx)
    assert_unchanged(snapshot(b), a, ROLES)


def run(family: CycleGAN, ctx: TrainContext, steps: range) -> list[dict[str, Tensor]]:
    return [family.train_step(([x], [y]), ctx) for x, y in (batch(seed=i) for i in steps)]


def test_train_step_is_fixed_by_the_seeds() -> None:
    a, b = tiny(pool=4), tiny(pool=4)
    out_a, out_b = run(a, context(a), range(3)), run(b, context(b), range(3))
    assert same_outputs(out_a, out_b)
    assert_unchanged(snapshot(b), a, ROLES)
    c = tiny(pool=4)
    run(c, context(c, noise_seed=4), range(3))  # other pool choices
    assert not torch.equal(torch.stack(c.pool_y.images), torch.stack(a.pool_y.images))


def test_resume_from_saved_state_is_bit_exact() -> None:
    straight = tiny(pool=4)
    ctx = context(straight)
    expected = run(straight, ctx, range(4))

    first = tiny(pool=4)
    ctx1 = context(first)
    run(first, ctx1, range(2))
    saved = saved_state(first, ctx1)

    def resume(family_state: dict[str, Any]) -> tuple[CycleGAN, list[dict[str, Tensor]]]:
        resumed = tiny(seed=99, pool=4)  # other weights: everything must come from the state
        return resumed, run(resumed, resumed_context(resumed, saved, family_state),
                            range(2, 4))

    resumed, got = resume(saved["family"])
    assert same_outputs(expected[2:], got)
    assert_unchanged(snapshot(straight), resumed, ROLES)
    # Control: without the pools' state the run differs.
    _, lost = resume({})
    assert not same_outputs(expected[2:], lost)


def test_interface() -> None:
    x_images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1).expand(5, *SHAPE).clone()
    family = tiny(x_images=x_images)
    assert family.name == "cyclegan" and family.evaluated is family.generator_xy
    assert family.provides == {"model.metrics"} and family.steps_per_iteration == 3
    assert list(family.optimizers()) == ["generators", "discriminator_y", "discriminator_x"]
    assert [roles for _, roles in family.optimizers().values()] == [
        ["generator_xy", "generator_yx"], ["discriminator_y"], ["discriminator_x"]]
    assert list(family.networks()) == ROLES
    z = family.sample_latent(7, torch.Generator().manual_seed(0))
    idx = torch.randint(5, (7,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, x_images[idx].float() / 127.5 - 1)
    assert family.tags() == ["model=cyclegan", "cycle_weight=10"]
    with pytest.raises(GanlabError, match="draws G's inputs from the data's X images"):
        tiny().sample_latent(2, torch.Generator())
    with pytest.raises(GanlabError, match=r"image minibatches x and y of one shape; got "
                                          r"\(6, 1, 8, 8\) and \(3, 1, 8, 8\)"):
        family.train_step(([batch()[0]], [batch()[1][:3]]), context(family))


# -- building from the config -----------------------------------------------------------------

SMALL = ["model.generator.width=4", "model.discriminator.width=4",
         "model.discriminator.num_layers=1", "model.classifier=null"]


def fake_unpaired(n_held: int = 20) -> SimpleNamespace:
    g = torch.Generator().manual_seed(5)
    held = torch.randint(0, 256, (n_held, *SHAPE), generator=g, dtype=torch.uint8)
    return SimpleNamespace(
        data_shape=SHAPE, num_classes=None, invert=True, held_out_paired=True,
        images=torch.randint(0, 256, (30, *SHAPE), generator=g, dtype=torch.uint8),
        y_images=torch.randint(0, 256, (30, *SHAPE), generator=g, dtype=torch.uint8),
        held_out_x=held, held_out_y=255 - held, held_out_labels=torch.arange(n_held) % 10,
        describe=lambda: "255 - v")


def test_from_config_builds_the_paper_setup() -> None:
    cfg = compose_preset("cyclegan_mnist_offline", SMALL)
    dm = fake_unpaired()
    family = CycleGAN.from_config(cfg, dm, instantiate)
    assert family.cycle_weight == 10.0 and family.identity_weight == 0.0
    assert family.pool_y.size == family.pool_x.size == 50 and family.inverted
    assert family.generator_xy is not family.generator_yx
    assert isinstance(family.discriminator_x, PatchDiscriminator)
    assert family.x_images is dm.images and family.classifier is None
    opt = family.factories["discriminator_x"](family.discriminator_x.parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 2e-4
    assert opt.defaults["betas"] == (0.5, 0.999)
    assert cfg.data._target_ == "ganlab.data.unpaired.UnpairedDigits"
    assert cfg.extractor.path.endswith("classifiers/mnist_offline.pt")
    assert list(cfg.metrics.use) == ["family_metrics"]
    baseline = compose_preset("cyclegan_mnist_offline",
                              ["experiment=cyclegan_nocycle_mnist_offline", *SMALL])
    assert baseline.model.cycle_weight == 0.0 and baseline.name == "cyclegan_nocycle_mnist_offline"
    assert baseline.train == cfg.train and baseline.model.generator == cfg.model.generator


@pytest.mark.parametrize(("overrides", "data", "message"), [
    (["model.cycle_weight=-1"], {}, "model.cycle_weight must be >= 0; got -1"),
    (["model.identity_weight=-0.5"], {}, "model.identity_weight must be >= 0; got -0.5"),
    (["model.pool_size=2.5"], {}, "model.pool_size must be an integer >= 0; got 2.5"),
    ([], {"y_images": None}, "model=cyclegan needs unpaired data"),
    ([], {"y_images": torch.zeros(3, 3, 8, 8, dtype=torch.uint8)},
     r"the domains' images differ in shape \(\[1, 8, 8\] and \[3, 8, 8\]\)"),
    (["model.classifier=/nonexistent/mnist_offline.pt"], {},
     "no classifier at /nonexistent/mnist_offline.pt"),
])
def test_from_config_bad_input_is_one_line(overrides: list[str], data: dict, message: str
                                           ) -> None:
    cfg = compose_preset("cyclegan_mnist_offline", [*SMALL, *overrides])
    dm = fake_unpaired()
    for key, value in data.items():
        setattr(dm, key, value)
    with pytest.raises(GanlabError, match=message) as err:
        CycleGAN.from_config(cfg, dm, instantiate)
    assert "\n" not in str(err.value)


# -- metrics and pictures ---------------------------------------------------------------------

def judge() -> ClassifierExtractor:
    torch.manual_seed(2)
    return ClassifierExtractor(DigitClassifier(1, 10, image_size=8, width=4, hidden=8),
                               SHAPE, test_accuracy=0.5, data="mnist_offline")


def test_metrics_by_hand() -> None:
    dm = fake_unpaired()
    family = tiny(classifier=judge(), inverted=True)
    values = family.metrics(dm, num_samples=12, device="cpu")
    order = torch.randperm(20, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))[:12]
    x = dm.held_out_x[order].float() / 127.5 - 1
    y = dm.held_out_y[order].float() / 127.5 - 1
    labels = dm.held_out_labels[order]
    g, f = family.generator_xy, family.generator_yx
    with torch.no_grad():
        gx, fy = g(x), f(y)
        expected = {"cycle_error_x": mean_abs(f(gx), x), "cycle_error_y": mean_abs(g(fy), y),
                    "true_error_xy": mean_abs(gx, y), "true_error_yx": mean_abs(fy, x)}
        net = family.classifier.classifier

        def acc(images: Tensor) -> float:
            return float((net(images).argmax(1) == labels).float().mean())

        expected.update(accuracy_xy=acc(-gx), accuracy_yx=acc(fy), accuracy_true_xy=acc(-y),
                        accuracy_x=acc(x))
    assert set(values) == set(expected)
    for key, value in expected.items():
        assert values[key] == pytest.approx(float(value), rel=1e-6, abs=1e-9), key
    # The fake mapping is the inversion alone: inverting y back gives x.
    assert values["accuracy_true_xy"] == values["accuracy_x"]
    protocol = family.protocol()
    assert protocol["num_held_out_x"] == 12 and protocol["held_out_paired"]
    assert protocol["mapping"] == "255 - v" and protocol["classifier_test_accuracy"] == 0.5
    assert protocol["cycle_weight"] == 10.0 and protocol["pool_size"] == 50


def test_metrics_without_pairs_or_classifier() -> None:
    dm = fake_unpaired()
    dm.held_out_paired, dm.held_out_y = False, dm.held_out_y[:7]
    family = tiny()
    values = family.metrics(dm, num_samples=100, device="cpu")
    assert set(values) == {"cycle_error_x", "cycle_error_y"}
    order = torch.randperm(7, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    y = dm.held_out_y[order].float() / 127.5 - 1
    with torch.no_grad():
        expected = mean_abs(family.generator_xy(family.generator_yx(y)), y)
    assert values["cycle_error_y"] == pytest.approx(expected.item(), rel=1e-6)
    assert family.protocol()["num_held_out_y"] == 7


def test_pictures_are_x_gx_fgx_and_y_fy_gfy() -> None:
    dm = fake_unpaired()
    family = tiny()
    pictures = family.pictures(SimpleNamespace(device=torch.device("cpu")), dm)
    assert set(pictures) == {"translation_xy", "translation_yx"}
    grid, nrow = pictures["translation_xy"]
    assert grid.shape == (60, *SHAPE) and nrow == 10
    order = torch.randperm(20, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    x = dm.held_out_x[order].float() / 127.5 - 1
    y = dm.held_out_y[order].float() / 127.5 - 1
    g, f = family.generator_xy, family.generator_yx
    with torch.no_grad():
        gx, fy = g(x), f(y)
        fgx, gfy = f(gx), g(fy)
    # Two blocks of three rows: ten x, their G(x), their F(G(x)).
    assert torch.equal(grid[:10], x[:10]) and torch.equal(grid[30:40], x[10:])
    torch.testing.assert_close(grid[10:20], gx[:10])
    torch.testing.assert_close(grid[20:30], fgx[:10])
    torch.testing.assert_close(grid[50:60], fgx[10:])
    grid, _ = pictures["translation_yx"]
    assert torch.equal(grid[:10], y[:10])
    torch.testing.assert_close(grid[40:50], fy[10:])
    torch.testing.assert_close(grid[50:60], gfy[10:])


def test_pictures_of_fewer_than_ten_held_out_images() -> None:
    dm = fake_unpaired()
    dm.held_out_y = dm.held_out_y[:7]
    pictures = tiny().pictures(SimpleNamespace(device=torch.device("cpu")), dm)
    grid, nrow = pictures["translation_yx"]
    assert grid.shape == (21, *SHAPE) and nrow == 7
    order = torch.randperm(7, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    assert torch.equal(grid[:7], dm.held_out_y[order].float() / 127.5 - 1)
    assert pictures["translation_xy"][0].shape == (60, *SHAPE)
