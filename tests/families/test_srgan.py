"""SRGAN and SRResNet (``ganlab.families.srgan``): each phase trains only its players by one
optimizer step on the hand-written cost's gradient, the content network never changes,
determinism and resume, building from the config, metrics and pictures by hand."""

from __future__ import annotations

import copy
import warnings
from types import SimpleNamespace
from typing import Any

import kornia
import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from family_helpers import (
    assert_sgd_step,
    assert_unchanged,
    check_saved_state_resumes,
    compose_preset,
    context,
    hand_grads_and_cost,
    same_outputs,
    sgd,
    snapshot,
)
from hydra.utils import get_class
from torch import Tensor, nn

from ganlab.app.build import build as instantiate
from ganlab.core.errors import GanlabError
from ganlab.core.family import TrainContext
from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.families.srgan import (
    SRGAN,
    ClassifierFeatures,
    PixelFeatures,
    SRResNetFamily,
    VGGFeatures,
    content_network,
    load_generator,
)
from ganlab.metrics.classifier import ClassifierExtractor, DigitClassifier
from ganlab.metrics.paired import held_out_pairs
from ganlab.nets.srresnet import SRGANDiscriminator, SRResNet

SIDE, SCALE = 16, 4


def tiny_classifier(seed: int = 7) -> ClassifierExtractor:
    torch.manual_seed(seed)
    return ClassifierExtractor(DigitClassifier(image_size=SIDE, width=4, hidden=8),
                               (1, SIDE, SIDE), data="mnist_offline")


def tiny(kind: str = "srgan", seed: int = 0, content: str = "classifier",
         inputs: Tensor | None = None) -> SRGAN:
    classifier = tiny_classifier()
    phi = ClassifierFeatures(classifier, "conv2") if content == "classifier" else PixelFeatures()
    torch.manual_seed(seed)
    g = SRResNet(width=4, num_blocks=1, scale=SCALE)
    inputs = inputs if inputs is not None else torch.rand(6, 1, 4, 4) * 2 - 1
    if kind == "srresnet":
        return SRResNetFamily(g, None, phi, classifier, inputs, {"generator": sgd})
    d = SRGANDiscriminator(image_size=SIDE, width=4, num_stages=2, hidden=8)
    return SRGAN(g, d, phi, classifier, inputs, {"discriminator": sgd, "generator": sgd})


def batch(seed: int = 1, n: int = 6) -> tuple[Tensor, Tensor]:
    """Targets ``y`` (n, 1, 16, 16) and their sources ``x`` (n, 1, 4, 4), in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(n, 1, SIDE, SIDE, generator=g) * 2 - 1
    return y, F.avg_pool2d(y, SCALE)


def with_content(family: SRGAN) -> dict[str, nn.Module]:
    """The family's networks and its fixed content network."""
    return {**family.networks(), "content": family.content}


def phi(family: SRGAN, images: Tensor) -> Tensor:
    """The classifier's second conv + ReLU, written out with torch ops."""
    conv = family.classifier.classifier.conv
    h = F.max_pool2d(F.relu(F.conv2d(images, conv[0].weight, conv[0].bias, padding=1)), 2)
    return F.relu(F.conv2d(h, conv[3].weight, conv[3].bias, padding=1))


def test_discriminator_phase_steps_the_discriminator_only() -> None:
    family = tiny()
    ctx = context(family)
    y, x = batch()
    with torch.no_grad():
        fake = family.generator(x)
    before = snapshot(with_content(family))

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        d = nets["discriminator"]
        return 0.5 * torch.log1p(torch.exp(-d(y))).mean() + \
            0.5 * torch.log1p(torch.exp(d(fake))).mean()

    grads, value = hand_grads_and_cost(cost, family, ["discriminator"])
    out = family.discriminator_phase(y, fake, ctx)
    assert all(p.grad is None for p in family.generator.parameters())
    assert_sgd_step(before, family, grads, atol=1e-6, rtol=0, moved="any")
    assert_unchanged(before, with_content(family), ["generator", "content"])
    assert out["d_loss"].item() == pytest.approx(value.item(), rel=1e-6)
    old = copy.deepcopy(family.discriminator)
    old.load_state_dict(before["discriminator"])
    with torch.no_grad():
        assert out["D_real"].item() == pytest.approx(torch.sigmoid(old(y)).mean().item(),
                                                     rel=1e-5)


@pytest.mark.parametrize("content", ["classifier", "pixel"])
def test_generator_phase_steps_the_generator_only(content: str) -> None:
    family = tiny(content=content)
    ctx = context(family)
    y, x = batch()
    before = snapshot(with_content(family))

    def cost(nets: dict[str, nn.Module]) -> Tensor:
        out = nets["generator"](x)
        if content == "classifier":
            l_x = ((phi(family, out) - phi(family, y)) ** 2).sum() / phi(family, y).numel()
        else:
            l_x = ((out - y) ** 2).sum() / y.numel()
        adversarial = -torch.log(torch.sigmoid(nets["discriminator"](out))).mean()
        return l_x + 1e-3 * adversarial

    grads, value = hand_grads_and_cost(cost, family, ["generator"])
    out = family.generator_phase(y, x, ctx)
    assert_sgd_step(before, family, grads, atol=1e-6, rtol=0, moved="any")
    assert_unchanged(before, with_content(family), ["discriminator", "content"], buffers=False)
    assert_unchanged(before, with_content(family), ["content"])
    assert all(p.grad is None for p in family.content.parameters())
    assert out["g_loss"].item() == pytest.approx(value.item(), rel=1e-5)
    assert out["g_loss"].item() == pytest.approx(
        out["content"].item() + 1e-3 * out["adversarial"].item(), rel=1e-6)


def test_srresnet_is_pixel_mse_on_the_generator_alone() -> None:
    family = tiny("srresnet", content="pixel")
    assert list(family.networks()) == ["generator"]
    assert list(family.optimizers()) == ["generator"]
    ctx = context(family)
    y, x = batch()
    before = snapshot(with_content(family))
    grads, value = hand_grads_and_cost(lambda nets: ((nets["generator"](x) - y) ** 2).mean(),
                                       family, ["generator"])
    out = family.train_step(([y], [x]), ctx)
    assert set(out) == {"content", "g_loss"}
    assert out["g_loss"].item() == pytest.approx(value.item(), rel=1e-6)
    assert_sgd_step(before, family, grads, atol=1e-6, rtol=0, moved="any")


def test_train_step_is_d_then_g_on_one_output() -> None:
    y, x = batch()
    a, b = tiny(), tiny()
    ctx_a, ctx_b = context(a), context(b)
    out = a.train_step(([y], [x]), ctx_a)
    fake = b.generator(x)
    d = b.discriminator_phase(y, fake, ctx_b)
    g = b.generator_phase(y, x, ctx_b, fake)
    assert set(out) == {"d_loss", "D_real", "D_fake", "content", "adversarial", "g_loss"}
    assert all(v.dim() == 0 and not v.requires_grad for v in out.values())
    assert all(torch.equal(out[k], v) for k, v in {**d, **g}.items())
    assert_unchanged(snapshot(with_content(b)), with_content(a),
                     ["generator", "discriminator", "content"])
    # The G step sees the D that the D step left: the adversarial cost is of the new D.
    c = tiny()
    with torch.no_grad():
        new_d = torch.log1p(torch.exp(-b.discriminator(fake))).mean()
        old_d = torch.log1p(torch.exp(-c.discriminator(c.generator(x)))).mean()
    assert g["adversarial"].item() == pytest.approx(new_d.item(), rel=1e-6)
    assert new_d.item() != pytest.approx(old_d.item(), rel=1e-6)


def test_the_content_network_is_fixed_in_eval_mode() -> None:
    family = tiny()
    assert family.content not in family.networks().values()
    assert all(not p.requires_grad for p in family.content.parameters())
    # Its classifier is a copy: the scorer's weights are the same, its module another.
    assert family.content.classifier is not family.classifier.classifier
    for net in (*family.networks().values(), family.content):
        net.train()
    assert family.content.training is False
    assert all(not m.training for m in family.content.modules())
    before = snapshot(with_content(family))
    ctx = context(family)
    run(family, ctx, range(3))
    assert_unchanged(before, with_content(family), ["content"])
    optimized = {id(p) for o in ctx.optimizers.values() for g in o.param_groups
                 for p in g["params"]}
    assert not optimized & {id(p) for p in family.content.parameters()}


def run(family: SRGAN, ctx: TrainContext, steps: range) -> list[dict[str, Tensor]]:
    return [family.train_step(([y], [x]), ctx) for y, x in (batch(seed=i) for i in steps)]


def test_train_step_is_fixed_by_the_seeds_and_resumes_exactly() -> None:
    a, b = tiny(), tiny()
    assert same_outputs(run(a, context(a), range(4)), run(b, context(b), range(4)))
    straight, resumed = check_saved_state_resumes(tiny, run)
    assert_unchanged(snapshot(straight), resumed, ["generator", "discriminator"])


def test_interface() -> None:
    family = tiny()
    assert family.name == "srgan" and family.evaluated is family.generator
    assert family.provides == {"model.metrics"}
    assert [roles for _, roles in family.optimizers().values()] == [["discriminator"],
                                                                     ["generator"]]
    assert family.tags() == ["model=srgan", "content=conv2"]
    assert tiny("srresnet", content="pixel").tags() == ["model=srresnet", "content=pixels"]
    inputs = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 1, 4, 4)
    fam = tiny(inputs=inputs)
    z = fam.sample_latent(5, torch.Generator().manual_seed(0))
    idx = torch.randint(6, (5,), generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, inputs[idx])


# -- content networks -------------------------------------------------------------------------

def test_classifier_layers_by_hand() -> None:
    classifier = tiny_classifier()
    c = classifier.classifier
    y = torch.rand(3, 1, SIDE, SIDE) * 2 - 1
    with torch.no_grad():
        conv1 = F.relu(F.conv2d(y, c.conv[0].weight, c.conv[0].bias, padding=1))
        assert torch.equal(ClassifierFeatures(classifier, "conv1")(y), conv1)
        fam = tiny()
        assert torch.equal(ClassifierFeatures(classifier, "conv2")(y), phi(fam, y))
        assert torch.equal(ClassifierFeatures(classifier, "features")(y), c.features(y))


@pytest.mark.parametrize(("node", "message"), [
    ({"network": "classifier", "layer": "conv9"}, "model.content.layer must be one of conv1"),
    ({"network": "resnet"}, "model.content.network must be pixel, classifier or vgg19"),
])
def test_bad_content_is_one_line(node: dict[str, str], message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        content_network(node, tiny_classifier())
    assert "\n" not in str(err.value)


def test_vgg19_without_weights_names_where_to_put_them(monkeypatch, tmp_path) -> None:
    from torchvision.models import VGG19_Weights

    def offline(*args: Any, **kwargs: Any) -> None:
        raise OSError("no network")

    monkeypatch.setattr(type(VGG19_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(GanlabError, match=(
            f"cannot download the VGG19 weights .*: put vgg19-dcbb9e9d.pth .* in "
            f"{tmp_path / 'hub' / 'checkpoints'}, or set model.content.weights")) as err:
        content_network({"network": "vgg19"}, None)
    assert "\n" not in str(err.value)
    with pytest.raises(GanlabError, match=f"no VGG19 weights at {tmp_path / 'none.pth'}"):
        VGGFeatures(str(tmp_path / "none.pth"))
    (tmp_path / "bad.pth").write_bytes(b"not a state dict")
    with pytest.raises(GanlabError, match="cannot read VGG19 weights"):
        VGGFeatures(str(tmp_path / "bad.pth"))


def test_vgg19_from_a_weights_file_is_phi_5_4(tmp_path) -> None:
    from torchvision.models import vgg19

    torch.manual_seed(0)
    net = vgg19()
    torch.save(net.state_dict(), tmp_path / "vgg19.pth")
    features = VGGFeatures(str(tmp_path / "vgg19.pth"))
    assert len(features.net) == 36 and isinstance(features.net[-1], nn.ReLU)
    assert features.layer == "vgg19_phi54" and "phi_5,4" in features.describe()
    assert isinstance(net.features[36], nn.MaxPool2d)  # phi_5,4 is before the 5th pool
    assert all(not p.requires_grad for p in features.parameters())
    x = torch.rand(2, 1, 32, 32) * 2 - 1
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = net.features[:36](((x + 1) / 2).repeat(1, 3, 1, 1).sub(mean).div(std))
        torch.testing.assert_close(features(x), expected, rtol=0, atol=1e-6)


# -- building from the config -----------------------------------------------------------------

SMALL = ["model.generator.width=4", "model.generator.num_blocks=1",
         "model.discriminator.width=4", "model.discriminator.hidden=8"]


def fake_pairs(n: int = 20) -> SimpleNamespace:
    g = torch.Generator().manual_seed(5)
    images = torch.randint(0, 256, (n, 1, SIDE, SIDE), generator=g, dtype=torch.uint8)
    sources = F.avg_pool2d(images.float(), SCALE).round().to(torch.uint8)
    return SimpleNamespace(data_shape=(1, SIDE, SIDE), pairing="low_resolution", scale=SCALE,
                           held_out_images=images, held_out_sources=sources,
                           held_out_labels=torch.arange(n) % 10)


def save_classifier(path: Any) -> None:
    torch.manual_seed(0)
    net = DigitClassifier(image_size=SIDE, width=4, hidden=8)
    torch.save({"state_dict": net.state_dict(), "config": {"net": {
        "image_size": SIDE, "width": 4, "hidden": 8}}, "test_accuracy": 0.5, "num_classes": 10,
        "data": "mnist_offline", "image_shape": [1, SIDE, SIDE]}, path)


@pytest.mark.parametrize("preset", ["srgan_mnist_offline", "srresnet_mnist_offline"])
def test_from_config(preset: str, tmp_path) -> None:
    save_classifier(tmp_path / "c.pt")
    small = SMALL if preset.startswith("srgan") else SMALL[:2]
    cfg = compose_preset(preset, [f"model.classifier={tmp_path / 'c.pt'}", *small])
    family = get_class(cfg.model._target_).from_config(cfg, fake_pairs(), instantiate)
    assert cfg.data.pairing == "low_resolution" and cfg.data.scale == 4
    assert family.generator.scale == 4 and family.generator.width == 4
    if preset.startswith("srgan"):
        assert type(family) is SRGAN and family.discriminator.image_size == SIDE
        assert isinstance(family.content, ClassifierFeatures) and family.content.layer == "conv2"
        assert family.adversarial_weight == 1e-3
    else:
        assert type(family) is SRResNetFamily and family.discriminator is None
        assert isinstance(family.content, PixelFeatures) and family.adversarial_weight == 0
    opt = family.factories["generator"](family.generator.parameters())
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["lr"] == 1e-3  # the presets'
    if family.discriminator is not None:
        opt = family.factories["discriminator"](family.discriminator.parameters())
        assert opt.defaults["lr"] == 1e-4 and opt.defaults["betas"] == (0.9, 0.999)
    assert torch.equal(family.inputs, fake_pairs().held_out_sources.float() / 127.5 - 1)


def test_init_from_a_checkpoint(tmp_path) -> None:
    source = SRResNet(width=4, num_blocks=1)
    torch.save({"state_dict": {f"generator.{k}": v for k, v in source.state_dict().items()}},
               tmp_path / "srresnet.ckpt")
    target = SRResNet(width=4, num_blocks=1)
    load_generator(target, str(tmp_path / "srresnet.ckpt"))
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in target.state_dict().items())
    save_classifier(tmp_path / "c.pt")
    cfg = compose_preset("srgan_mnist_offline", [f"model.classifier={tmp_path / 'c.pt'}",
                                                f"model.init_from={tmp_path / 'srresnet.ckpt'}",
                                                *SMALL])
    family = SRGAN.from_config(cfg, fake_pairs(), instantiate)
    assert torch.equal(family.generator.tail.weight, source.tail.weight)
    with pytest.raises(GanlabError, match="does not match model.generator") as err:
        load_generator(SRResNet(width=8, num_blocks=1), str(tmp_path / "srresnet.ckpt"))
    assert "\n" not in str(err.value)
    with pytest.raises(GanlabError, match="model.init_from: no checkpoint at"):
        load_generator(target, str(tmp_path / "none.ckpt"))
    (tmp_path / "bad.ckpt").write_bytes(b"x")
    with pytest.raises(GanlabError, match="cannot read .* as a ganlab checkpoint"):
        load_generator(target, str(tmp_path / "bad.ckpt"))


@pytest.mark.parametrize(("overrides", "data", "message"), [
    ([], {"pairing": "edges"}, "needs held-out low-resolution pairs"),
    ([], {"held_out_sources": None}, "needs held-out low-resolution pairs"),
    (["model.adversarial_weight=-1"], {}, "must be >= 0"),
    (["model.content.network=pixels"], {}, "must be pixel, classifier or vgg19"),
])
def test_from_config_bad_input_is_one_line(overrides: list[str], data: dict[str, Any],
                                           message: str, tmp_path) -> None:
    save_classifier(tmp_path / "c.pt")
    cfg = compose_preset("srgan_mnist_offline", [f"model.classifier={tmp_path / 'c.pt'}",
                                                *overrides, *SMALL])
    dm = fake_pairs()
    for k, v in data.items():
        setattr(dm, k, v)
    with pytest.raises(GanlabError, match=message) as err:
        SRGAN.from_config(cfg, dm, instantiate)
    assert "\n" not in str(err.value)


def test_a_missing_classifier_is_one_line(tmp_path) -> None:
    cfg = compose_preset("srresnet_mnist_offline", [f"model.classifier={tmp_path / 'none.pt'}"])
    with pytest.raises(GanlabError, match="no classifier at .*none.pt; train one with"):
        SRResNetFamily.from_config(cfg, fake_pairs(), instantiate)


# -- metrics and pictures ---------------------------------------------------------------------

def test_metrics_by_hand() -> None:
    family, dm = tiny(), fake_pairs()
    values = family.metrics(dm, num_samples=50, device="cpu")
    order = torch.randperm(20, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))
    x = dm.held_out_sources[order].float() / 127.5 - 1
    y = dm.held_out_images[order].float() / 127.5 - 1
    labels = dm.held_out_labels[order]
    c = family.classifier.classifier
    family.generator.eval()
    with torch.no_grad():
        rows = {"": family.generator(x),
                "bicubic_": F.interpolate(x, scale_factor=4, mode="bicubic",
                                          align_corners=False).clamp(-1, 1)}
        real = c.features(y).double().numpy()
        for prefix, out in rows.items():
            assert values[f"{prefix}l1"] == pytest.approx(float((out - y).abs().mean()), rel=1e-5)
            mse = ((out - y) ** 2).mean(dim=(1, 2, 3))
            assert values[f"{prefix}psnr"] == pytest.approx(
                float((10 * torch.log10(4 / mse)).mean()), rel=1e-5)
            assert values[f"{prefix}ssim"] == pytest.approx(
                float(kornia.metrics.ssim(out, y, 11, max_val=2.0).mean()), rel=1e-5)
            assert values[f"{prefix}accuracy_outputs"] == pytest.approx(
                float((c(out).argmax(1) == labels).float().mean()))
            fake = c.features(out).double().numpy()
            m1, m2 = real.mean(0), fake.mean(0)
            s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # dead ReLU units: singular covariances
                root = scipy.linalg.sqrtm(s1 @ s2).real
            fid = float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * root))
            assert values[f"{prefix}classifier_fid"] == pytest.approx(fid, rel=1e-4, abs=1e-6)
        assert values["accuracy_targets"] == pytest.approx(
            float((c(y).argmax(1) == labels).float().mean()))
        assert "bicubic_accuracy_targets" not in values
    assert family.protocol()["num_held_out"] == 20
    assert values["bicubic_psnr"] != pytest.approx(values["psnr"])
    # A perfect output: SSIM 1 and the FID of the targets to themselves, 0.
    perfect = copy.copy(family)
    perfect.generator = nn.Upsample(scale_factor=4)  # type: ignore[assignment]
    dm.held_out_sources = dm.held_out_images[:, :, ::4, ::4].contiguous()
    dm.held_out_images = dm.held_out_sources.repeat_interleave(4, 2).repeat_interleave(4, 3)
    same = perfect.metrics(dm, 50, "cpu")
    assert same["ssim"] == pytest.approx(1.0) and same["classifier_fid"] == pytest.approx(
        0.0, abs=1e-6)


def test_metrics_need_held_out_pairs() -> None:
    dm = SimpleNamespace(data_shape=(1, SIDE, SIDE), held_out_sources=None)
    with pytest.raises(GanlabError, match="model=srgan measures on held-out pairs, and "
                                          "SimpleNamespace has none"):
        tiny().metrics(dm, 10, "cpu")


def test_pictures_are_input_bicubic_output_target_rows() -> None:
    family, dm = tiny(), fake_pairs()
    family.generator.eval()
    sampler = SimpleNamespace(device=torch.device("cpu"),
                              generate_from=lambda x: family.generator(x).detach())
    grid, nrow = family.pictures(sampler, dm)["super_resolution"]
    # 20 held-out pairs: two groups of four rows of 10.
    assert grid.shape == (80, 1, SIDE, SIDE) and nrow == 10
    x, y, _ = held_out_pairs(dm, 20, "srgan")
    rows = grid.view(2, 4, 10, 1, SIDE, SIDE)
    for group in range(2):
        xs, ys = x[group * 10:(group + 1) * 10], y[group * 10:(group + 1) * 10]
        assert torch.equal(rows[group, 0], xs.repeat_interleave(4, 2).repeat_interleave(4, 3))
        torch.testing.assert_close(rows[group, 1], F.interpolate(
            xs, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1))
        with torch.no_grad():
            torch.testing.assert_close(rows[group, 2], family.generator(xs))
        assert torch.equal(rows[group, 3], ys)
