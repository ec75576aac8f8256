"""The paired-translation scores against hand formulas (PSNR = 10 log10(range² / MSE), SSIM of
constant images in closed form), the classifier accuracy, the held-out pairs and the
input | output | target grid (ganlab.metrics.paired)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.metrics import paired


def images(seed: int, n: int = 4, shape: tuple[int, ...] = (1, 16, 16)) -> Tensor:
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_l1_and_psnr_by_hand() -> None:
    a, b = images(0), images(1)
    assert paired.l1(a, b) == pytest.approx(float((a - b).abs().sum() / a.numel()), rel=1e-6)
    mse = [float(((a[i].double() - b[i].double()) ** 2).sum() / a[i].numel()) for i in range(4)]
    expected = sum(10 * math.log10(2.0**2 / m) for m in mse) / 4
    assert paired.psnr(a, b) == pytest.approx(expected, rel=1e-6)  # torchmetrics: float32 range
    # One image 1/8 off everywhere: MSE 1/64, PSNR 10 log10(4 * 64).
    assert paired.psnr(a[:1] + 0.125, a[:1]) == pytest.approx(10 * math.log10(256), rel=1e-6)


def test_ssim_of_constant_images_is_the_closed_form() -> None:
    # No variance: SSIM = (2 a b + C1) / (a² + b² + C1), C1 = (0.01 * range)².
    a, b = 0.25, -0.125  # exact in float32
    c1 = (0.01 * 2.0) ** 2
    x, y = torch.full((2, 1, 16, 16), a), torch.full((2, 1, 16, 16), b)
    assert paired.ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)
    noisy = images(2)
    assert paired.ssim(noisy, noisy) == pytest.approx(1.0, abs=1e-12)
    assert paired.ssim(noisy, images(3)) < 0.2


class Threshold(nn.Module):
    """A fake classifier: class 1 when the mean pixel is positive, else 0."""

    def digits(self, x: Tensor) -> Tensor:
        return (x.mean(dim=(1, 2, 3)) > 0).long()[:, None]


def test_classifier_accuracy_and_scores() -> None:
    x = torch.cat([torch.full((3, 1, 16, 16), 0.5), torch.full((1, 1, 16, 16), -0.5)])
    labels = torch.tensor([1, 1, 0, 0])
    assert paired.classifier_accuracy(Threshold(), x, labels, batch_size=3) == 0.75
    scores = paired.paired_scores(x, -x, labels, Threshold())
    assert scores["accuracy_outputs"] == 0.75 and scores["accuracy_targets"] == 0.25
    assert scores["l1"] == pytest.approx(1.0) and set(scores) == {
        "l1", "psnr", "ssim", "accuracy_outputs", "accuracy_targets"}
    assert set(paired.paired_scores(x, -x)) == {"l1", "psnr", "ssim"}


@pytest.mark.parametrize(("call", "message"), [
    (lambda: paired.l1(images(0), images(0, n=3)), "one shape"),
    (lambda: paired.ssim(images(0, shape=(1, 7, 7)), images(1, shape=(1, 7, 7))),
     "side >= 11"),
    (lambda: paired.classifier_accuracy(Threshold(), images(0), torch.zeros(3)),
     "4 images but 3 labels"),
    (lambda: paired.triplet_grid(images(0, n=2), images(0, n=2), images(0, n=2), 3),
     "at least 3 pairs"),
])
def test_bad_input_is_one_line(call, message: str) -> None:
    with pytest.raises(GanlabError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_held_out_pairs_are_chosen_by_the_fixed_seed() -> None:
    g = torch.Generator().manual_seed(0)
    dm = SimpleNamespace(held_out_images=torch.randint(0, 256, (10, 1, 4, 4), generator=g,
                                                       dtype=torch.uint8),
                         held_out_sources=torch.randint(0, 256, (10, 1, 2, 2), generator=g,
                                                        dtype=torch.uint8),
                         held_out_labels=torch.arange(10))
    x, y, labels = paired.held_out_pairs(dm, 6, "pix2pix")
    order = torch.randperm(10, generator=torch.Generator().manual_seed(RECONSTRUCTION_SEED))[:6]
    assert torch.equal(labels, order)
    assert torch.equal(y, dm.held_out_images[order].float() / 127.5 - 1)
    assert torch.equal(x, dm.held_out_sources[order].float() / 127.5 - 1)
    assert len(paired.held_out_pairs(dm, 100, "pix2pix")[0]) == 10
    with pytest.raises(GanlabError, match="model=srgan measures on held-out pairs"):
        paired.held_out_pairs(SimpleNamespace(held_out_images=None), 5, "srgan")


def test_triplet_grid_rows_are_input_output_target() -> None:
    small, out, target = images(0, n=5, shape=(1, 2, 2)), images(1, n=5), images(2, n=5)
    out, target = out[:, :, :4, :4], target[:, :, :4, :4]
    grid, nrow = paired.triplet_grid(small, out, target, per_row=2)
    assert nrow == 6 and grid.shape == (12, 1, 4, 4)  # 2 rows of 2 triples; the 5th dropped
    for i in range(4):
        enlarged = small[i].repeat_interleave(2, -1).repeat_interleave(2, -2)
        assert torch.equal(grid[3 * i], enlarged)
        assert torch.equal(grid[3 * i + 1], out[i]) and torch.equal(grid[3 * i + 2], target[i])
    rgb, _ = paired.triplet_grid(small, out.expand(-1, 3, -1, -1), target.expand(-1, 3, -1, -1),
                                 per_row=1)
    assert rgb.shape == (15, 3, 4, 4) and torch.equal(rgb[0, 2], rgb[0, 0])


def test_translate_runs_in_eval_mode_and_restores_the_mode() -> None:
    net = nn.Sequential(nn.Dropout(0.5))
    x = images(0, n=7)
    assert torch.equal(paired.translate(net, x, "cpu", batch_size=3), x) and net.training
