"""The GAWWN family: each phase steps only its players by one SGD step on the hand-written
cost's gradient; determinism and exact resume; IoU, ink boxes, the metrics and pictures by
hand; building from the config and its one-line errors."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from family_helpers import (
    assert_sgd_step,
    assert_unchanged,
    check_saved_state_resumes,
    compose_preset,
    context,
    hand_grads,
    same_outputs,
    sgd,
    snapshot,
    softplus,
)
from scipy import linalg
from torch import Tensor, nn

from ganlab.app.build import build as instantiate
from ganlab.core.errors import GanlabError
from ganlab.core.family import TrainContext
from ganlab.core.seeds import EVAL_SEED, SAMPLE_SEED
from ganlab.data.what_where import digit_crops
from ganlab.families.gawwn import GAWWN, box_iou, box_overlay, class_interleaved, ink_boxes
from ganlab.metrics.classifier import ClassifierExtractor, DigitClassifier
from ganlab.nets.gawwn import GAWWNDiscriminator, GAWWNGenerator

CANVAS, LATENT = 16, 4


def held_conditions(m: int = 30) -> Tensor:
    """``m`` conditions on a 16x16 canvas, labels ``i % 10`` (in class order), boxes varied."""
    i = torch.arange(m)
    x0, y0 = i % 5, (2 * i) % 6
    return torch.stack([i % 10, x0, y0, x0 + 6 + i % 4, y0 + 5 + i % 3], 1).float()[
        torch.argsort(i % 10, stable=True)]


def classifier(seed: int = 0) -> ClassifierExtractor:
    torch.manual_seed(seed)
    return ClassifierExtractor(DigitClassifier(width=4, hidden=6), (1, 28, 28), test_accuracy=0.5)


def tiny_gawwn(seed: int = 0, where: bool = True, **kwargs: Any) -> GAWWN:
    torch.manual_seed(seed)
    return GAWWN(
        GAWWNGenerator(LATENT, canvas=CANVAS, embed_dim=2, width=2, where=where),
        GAWWNDiscriminator(canvas=CANVAS, embed_dim=2, width=2, where=where),
        {"discriminator": sgd, "generator": sgd}, held_conditions(), classifier(), **kwargs)


def batch(seed: int = 1, n: int = 6) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    cond = held_conditions()[torch.randperm(30, generator=g)[:n]]
    return torch.rand(n, 1, CANVAS, CANVAS, generator=g) * 2 - 1, cond


@pytest.mark.parametrize("where", [True, False], ids=["box", "class_only"])
def test_discriminator_phase_steps_the_discriminator_only(where: bool) -> None:
    family = tiny_gawwn(where=where)
    ctx = context(family)
    x, cond = batch()
    before = snapshot(family, buffers=False)
    z = torch.randn(6, LATENT, generator=torch.Generator().manual_seed(3))

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        d = nets["discriminator"]
        with torch.no_grad():
            fake = nets["generator"](z, cond)
        return 0.5 * softplus(-d(x, cond)).mean() + 0.5 * softplus(d(fake, cond)).mean()

    grads = hand_grads(cost, family, ["discriminator"], allow_unused=True)
    out = family.discriminator_phase(x, cond, ctx)
    assert all(p.grad is None for p in family.generator.parameters())
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0, moved="most")
    assert_unchanged(before, family, ["generator"], buffers=False)
    assert set(out) == {"d_loss", "D_real", "D_fake"}
    assert all(v.dim() == 0 and not v.requires_grad for v in out.values())


def test_the_discriminator_cost_value_by_hand() -> None:
    family = tiny_gawwn()
    x, cond = batch()
    old = copy.deepcopy(family)
    out = family.discriminator_phase(x, cond, context(family))
    z = torch.randn(6, LATENT, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        real = old.discriminator(x, cond)
        fake = old.discriminator(old.generator(z, cond), cond)
    assert out["d_loss"].item() == pytest.approx(
        (0.5 * softplus(-real).mean() + 0.5 * softplus(fake).mean()).item(), rel=1e-6)
    assert out["D_real"].item() == pytest.approx(torch.sigmoid(real).mean().item(), rel=1e-6)
    assert out["D_fake"].item() == pytest.approx(torch.sigmoid(fake).mean().item(), rel=1e-6)


@pytest.mark.parametrize("where", [True, False], ids=["box", "class_only"])
def test_generator_phase_steps_the_generator_only(where: bool) -> None:
    family = tiny_gawwn(where=where)
    ctx = context(family)
    _, cond = batch()
    before = snapshot(family, buffers=False)
    z = torch.randn(6, LATENT, generator=torch.Generator().manual_seed(3))

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        return 0.5 * softplus(-nets["discriminator"](nets["generator"](z, cond), cond)).mean()

    grads = hand_grads(cost, family, ["generator"], allow_unused=True)
    old = copy.deepcopy(family)
    value = family.generator_phase(cond, ctx)
    assert_sgd_step(before, family, grads, atol=1e-7, rtol=0, moved="most")
    assert_unchanged(before, family, ["discriminator"], buffers=False)
    with torch.no_grad():
        assert value.item() == pytest.approx(cost(old.networks()).item(), rel=1e-6)
    assert value.requires_grad is False


def test_train_step_is_the_two_phases_in_order() -> None:
    x, cond = batch()
    a, b = tiny_gawwn(), tiny_gawwn()
    ctx_a, ctx_b = context(a), context(b)
    out = a.train_step(([x], [cond]), ctx_a)
    d = b.discriminator_phase(x, cond, ctx_b)
    g = b.generator_phase(cond, ctx_b)
    assert set(out) == {"d_loss", "D_real", "D_fake", "g_loss"}
    assert torch.equal(out["g_loss"], g) and all(torch.equal(out[k], d[k]) for k in d)
    assert_unchanged(snapshot(b, buffers=False), a, ["generator", "discriminator"], buffers=False)


def test_a_bad_condition_in_a_batch_is_one_line() -> None:
    family = tiny_gawwn()
    x, cond = batch()
    cond[0, 3] = CANVAS + 1
    with pytest.raises(GanlabError, match="a box outside the 16x16 canvas") as err:
        family.train_step(([x], [cond]), context(family))
    assert "\n" not in str(err.value)


def run(family: GAWWN, ctx: TrainContext, steps: range) -> list[dict[str, Tensor]]:
    return [family.train_step(([x], [c]), ctx) for x, c in (batch(seed=i) for i in steps)]


def test_train_step_is_fixed_by_the_seeds() -> None:
    a, b = tiny_gawwn(), tiny_gawwn()
    out_a, out_b = run(a, context(a), range(3)), run(b, context(b), range(3))
    assert same_outputs(out_a, out_b)
    assert_unchanged(snapshot(b, buffers=False), a, ["generator", "discriminator"], buffers=False)
    c = tiny_gawwn()
    run(c, context(c, noise_seed=4), range(3))
    assert not torch.equal(c.discriminator.head.weight, a.discriminator.head.weight)


def test_resume_from_saved_state_is_bit_exact() -> None:
    straight, resumed = check_saved_state_resumes(tiny_gawwn, run)
    assert_unchanged(snapshot(straight, buffers=False), resumed, ["generator", "discriminator"],
                     buffers=False)


def test_interface() -> None:
    family = tiny_gawwn()
    assert family.name == "gawwn" and family.evaluated is family.generator
    assert family.provides == {"model.metrics"}
    assert [(n, roles) for n, (_, roles) in family.optimizers().items()] == [
        ("discriminator", ["discriminator"]), ("generator", ["generator"])]
    g = torch.Generator().manual_seed(0)
    latent = family.sample_latent(7, torch.Generator().manual_seed(0))
    z = torch.randn(7, LATENT, generator=g)
    idx = torch.randint(30, (7,), generator=g)
    assert torch.equal(latent, torch.cat([z, class_interleaved(held_conditions())[idx]], 1))
    assert torch.equal(family.decode(latent), family.generator(z, latent[:, LATENT:]))
    assert family.tags() == ["model=gawwn", "where=box"]
    assert tiny_gawwn(where=False).tags() == ["model=gawwn", "where=off"]


# -- boxes, IoU, overlays by hand -------------------------------------------------------------

def test_box_iou_by_hand() -> None:
    a = torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 4, 4], [2, 3, 6, 9]])
    b = torch.tensor([[5, 5, 15, 15], [0, 0, 10, 10], [4, 4, 8, 8], [0, 5, 4, 7]])
    # 25 / (100 + 100 - 25); identical; touching corners; 2 x 2 = 4 / (24 + 8 - 4).
    assert box_iou(a, b).tolist() == [25 / 175, 1.0, 0.0, 4 / 28]


def test_ink_boxes_by_hand() -> None:
    canvases = torch.full((3, 1, 8, 8), -1.0)
    canvases[0, 0, 2, 3] = 0.5
    canvases[0, 0, 5, 6] = 0.1
    canvases[0, 0, 7, 0] = -0.5  # below the threshold 0: not ink
    canvases[1, 0, 0:8, 7] = 1.0
    boxes, has = ink_boxes(canvases, 0.0)
    assert boxes.tolist() == [[3, 2, 7, 6], [7, 0, 8, 8], [0, 0, 0, 0]]
    assert has.tolist() == [True, True, False]


def test_class_interleaved_by_hand() -> None:
    cond = torch.tensor([[0.0, 1], [0, 2], [0, 3], [1, 4], [1, 5], [2, 6]])
    assert class_interleaved(cond)[:, 1].tolist() == [1, 4, 6, 2, 5, 3]


def test_box_overlay_draws_the_outline_in_red() -> None:
    canvases = torch.zeros(1, 1, 6, 6)
    out = box_overlay(canvases, torch.tensor([[1, 2, 4, 5]]))
    outline = torch.zeros(6, 6, dtype=torch.bool)
    outline[2:5, 1:4] = True
    outline[3, 2] = False  # the interior of a 3 x 3 box
    assert torch.equal(out[0, 0], outline.float())
    assert torch.equal(out[0, 1], -outline.float()) and torch.equal(out[0, 2], -outline.float())


# -- metrics and pictures ---------------------------------------------------------------------

def held_out_data() -> SimpleNamespace:
    g = torch.Generator().manual_seed(5)
    images = torch.zeros(30, 1, CANVAS, CANVAS, dtype=torch.uint8)
    cond = held_conditions()
    for i, (_, x0, y0, x1, y1) in enumerate(cond.long().tolist()):
        images[i, :, y0:y1, x0:x1] = torch.randint(1, 256, (y1 - y0, x1 - x0), generator=g,
                                                   dtype=torch.uint8)
        if i % 2:  # no ink in the box's last column: IoU (w - 1) / w
            images[i, :, y0:y1, x1 - 1] = 0
    return SimpleNamespace(held_out_images=images, held_out_conditions=cond)


def numpy_fid(a: Tensor, b: Tensor) -> float:
    a, b = a.double().numpy(), b.double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root))


def hand_ious(canvases: Tensor, cond: Tensor, threshold: float) -> list[float]:
    """IoU of each requested box with the box of the canvas's pixels above ``threshold``."""
    ious = []
    for canvas, box in zip(canvases, cond[:, 1:].long().tolist(), strict=True):
        ys, xs = torch.nonzero(canvas[0] > threshold, as_tuple=True)
        if len(ys) == 0:
            ious.append(0.0)
            continue
        ink = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        w = max(0, min(ink[2], box[2]) - max(ink[0], box[0]))
        h = max(0, min(ink[3], box[3]) - max(ink[1], box[1]))
        area = (ink[2] - ink[0]) * (ink[3] - ink[1]) + (box[2] - box[0]) * (box[3] - box[1])
        ious.append(w * h / (area - w * h))
    return ious


@pytest.mark.filterwarnings("ignore:Matrix is singular")
def test_metrics_by_hand() -> None:
    dm = held_out_data()
    cond = class_interleaved(held_conditions())[torch.arange(45) % 30]
    assert cond[:10, 0].tolist() == list(range(10))
    z = torch.randn(45, LATENT, generator=torch.Generator().manual_seed(EVAL_SEED))
    family = tiny_gawwn()
    family.generator.eval()
    with torch.no_grad():
        fake = family.generator(z, cond)
    # An untrained G draws no pixel above 0: a threshold that some of its pixels pass.
    threshold = float(fake.flatten().quantile(0.97))
    family = tiny_gawwn(ink_threshold=threshold)
    values = family.metrics(dm, num_samples=45, device="cpu")
    with torch.no_grad():
        feats, logits = family.classifier(digit_crops(fake, cond[:, 1:]))
        real = dm.held_out_images.float() / 127.5 - 1
        real_crops = digit_crops(real, dm.held_out_conditions[:, 1:])
        real_feats, real_logits = family.classifier(real_crops)
    pred, labels = logits.argmax(1), cond[:, 0].long()
    acc = [float((pred[labels == k] == k).double().mean()) for k in range(10)]
    assert [values[f"crop_accuracy_{k}"] for k in range(10)] == pytest.approx(acc, abs=1e-12)
    assert values["crop_accuracy"] == pytest.approx(sum(acc) / 10, abs=1e-12)
    ious = hand_ious(fake, cond, threshold)
    assert 0 < sum(ious) < len(ious)
    assert values["location_iou"] == pytest.approx(sum(ious) / len(ious), abs=1e-12)
    assert values["crop_fid"] == pytest.approx(numpy_fid(real_feats, feats), rel=1e-6, abs=1e-9)
    protocol = family.protocol()
    assert protocol["num_samples"] == 45 and protocol["num_conditions"] == 30
    real_pred = real_logits.argmax(1)
    real_labels = dm.held_out_conditions[:, 0].long()
    assert protocol["real_crop_accuracy"] == pytest.approx(
        np.mean([float((real_pred[real_labels == k] == k).double().mean()) for k in range(10)]),
        abs=1e-12)
    real_ious = hand_ious(real, dm.held_out_conditions, threshold)
    assert 0 < sum(real_ious) < len(real_ious)
    assert protocol["real_location_iou"] == pytest.approx(np.mean(real_ious), abs=1e-12)
    assert protocol["classifier_test_accuracy"] == 0.5
    assert protocol["ink_threshold"] == threshold


def test_metrics_need_every_class() -> None:
    with pytest.raises(GanlabError, match="metrics.num_samples must be >= 10, got 5"):
        tiny_gawwn().metrics(held_out_data(), 5, "cpu")


def test_pictures() -> None:
    family = tiny_gawwn()
    pictures = family.pictures(SimpleNamespace(device=torch.device("cpu")), held_out_data())
    overlays, nrow = pictures["box_overlays"]
    # 3 held-out conditions per class: rows of 3 (the first 8 at most), class after class.
    assert overlays.shape == (30, 3, CANVAS, CANVAS) and nrow == 8
    order = class_interleaved(held_conditions())
    cond = torch.cat([order[order[:, 0] == k] for k in range(10)])
    z = torch.randn(30, LATENT, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    family.generator.eval()
    with torch.no_grad():
        expected = box_overlay(family.generator(z, cond), cond[:, 1:])
    torch.testing.assert_close(overlays, expected, atol=1e-6, rtol=0)
    same, nrow = pictures["class_at_boxes"]
    assert same.shape == (80, 3, CANVAS, CANVAS) and nrow == 8
    boxes = order[:8, 1:]
    z1 = torch.randn(1, LATENT, generator=torch.Generator().manual_seed(SAMPLE_SEED))
    for k in range(10):
        grid = torch.cat([torch.full((8, 1), float(k)), boxes], 1)
        with torch.no_grad():
            row = box_overlay(family.generator(z1.expand(8, -1), grid), boxes)
        torch.testing.assert_close(same[8 * k : 8 * (k + 1)], row, atol=1e-6, rtol=0)


# -- building from the config -----------------------------------------------------------------

def fake_what_where(held: bool = True) -> SimpleNamespace:
    return SimpleNamespace(data_shape=(1, 64, 64), num_classes=10, canvas=64,
                           held_out_conditions=held_conditions() if held else None)


@pytest.mark.parametrize("preset", ["gawwn_mnist_offline", "gawwn_classonly_mnist_offline"])
def test_from_config_builds_the_presets(preset: str) -> None:
    cfg = compose_preset(preset, ["paths.data_dir=/tmp/dd"])
    family = GAWWN.from_config(cfg, fake_what_where(), instantiate)
    where = preset == "gawwn_mnist_offline"
    assert family.where is where and family.generator.where is where
    assert family.discriminator.where is where
    assert family.generator.latent_dim == 64 and family.generator.embed_dim == 16
    assert family._classifier == "/tmp/dd/classifiers/mnist_offline.pt"
    assert cfg.extractor.path == "/tmp/dd/classifiers/mnist_offline.pt"
    assert list(cfg.metrics.use) == ["family_metrics"]
    assert cfg.data._target_.endswith("WhatWhereDigits") and cfg.data.held_out == 0.1
    assert type(family.loss).__name__ == "NonSaturating"
    opt = family.factories["generator"](family.generator.parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 2e-4
    assert cfg.name == preset


@pytest.mark.parametrize(("overrides", "data", "message"), [
    ([], fake_what_where(held=False), "set data.held_out"),
    ([], SimpleNamespace(num_classes=10), "needs \\(class, box\\) conditions: "
                                          "data=what_where_digits, not SimpleNamespace"),
    (["model.where=1"], fake_what_where(), "model.where must be true or false; got 1"),
    (["model.ink_threshold=1.5"], fake_what_where(), "model.ink_threshold must be in"),
    (["~model.optimizers.generator"], fake_what_where(), "no optimizer for generator"),
])
def test_from_config_bad_input_is_one_line(overrides: list[str], data: Any, message: str) -> None:
    cfg = compose_preset("gawwn_mnist_offline", overrides)
    with pytest.raises(GanlabError, match=message) as err:
        GAWWN.from_config(cfg, data, instantiate)
    assert "\n" not in str(err.value)
