"""Scores of a paired translation ``x → y`` on held-out pairs, shared by the translation
families (pix2pix, Isola et al. 2017 §4.2 and SRGAN, Ledig et al. 2017 §3.2; GAN_SPEC §7).

- ``l1``: the mean over images and pixels of ``|G(x) - y|`` (images in [-1, 1]);
- ``psnr``: the mean over images of ``10 log10(range² / MSE)`` with ``range = 2`` (the width of
  [-1, 1]: torchmetrics' ``peak_signal_noise_ratio(data_range=2.0)`` per image, then averaged);
- ``ssim``: torchmetrics' ``structural_similarity_index_measure(data_range=2.0)`` (Wang et al.
  2004: Gaussian window 11, σ = 1.5, K1 = 0.01, K2 = 0.03), the mean over images;
- ``accuracy_outputs`` / ``accuracy_targets``: the share of outputs / of the true targets that
  the lab classifier labels as the target's digit (pix2pix's "does a pretrained model recognise
  it", its FCN-score; the targets' accuracy is the ceiling).

:func:`triplet_grid` lays out the pictures of a paired family: rows of ``input | output |
target`` triples.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.data.images import to_unit_range

#: The width of the pixel range [-1, 1] that PSNR and SSIM are measured with.
DATA_RANGE = 2.0


def _check(outputs: Tensor, targets: Tensor) -> None:
    if outputs.shape != targets.shape or outputs.dim() != 4:
        raise GanlabError(f"paired scores need outputs and targets of one shape (N, C, H, W); "
                          f"got {tuple(outputs.shape)} and {tuple(targets.shape)}")


def l1(outputs: Tensor, targets: Tensor) -> float:
    """Mean over images and pixels of ``|outputs - targets|``."""
    _check(outputs, targets)
    return float((outputs.double() - targets.double()).abs().mean())


def psnr(outputs: Tensor, targets: Tensor) -> float:
    """Mean over images of ``10 log10(DATA_RANGE² / MSE_image)`` (torchmetrics)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    _check(outputs, targets)
    return float(peak_signal_noise_ratio(outputs.double(), targets.double(),
                                         data_range=DATA_RANGE, dim=(1, 2, 3),
                                         reduction="elementwise_mean"))


def ssim(outputs: Tensor, targets: Tensor) -> float:
    """Mean over images of the SSIM (torchmetrics' defaults, ``data_range=DATA_RANGE``)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _check(outputs, targets)
    if min(outputs.shape[-2:]) < 11:
        raise GanlabError(f"SSIM's 11x11 window needs images of side >= 11; got "
                          f"{tuple(outputs.shape[-2:])}")
    return float(structural_similarity_index_measure(outputs.double(), targets.double(),
                                                     data_range=DATA_RANGE))


@torch.no_grad()
def classifier_accuracy(classifier: Any, images: Tensor, labels: Tensor,
                        batch_size: int = 1000) -> float:
    """Share of ``images`` (in [-1, 1]) whose class by ``classifier`` (a
    :class:`~ganlab.metrics.classifier.ClassifierExtractor`: its ``digits``) is ``labels``."""
    if len(images) != len(labels):
        raise GanlabError(f"{len(images)} images but {len(labels)} labels")
    correct = 0
    for part, lab in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        correct += int((classifier.digits(part.float())[:, 0].cpu() == lab.cpu()).sum())
    return correct / max(len(images), 1)


def paired_scores(outputs: Tensor, targets: Tensor, labels: Tensor | None = None,
                  classifier: Any = None) -> dict[str, float]:
    """``l1``, ``psnr``, ``ssim`` of ``outputs`` against ``targets`` (both in [-1, 1]); with
    labels and a classifier also ``accuracy_outputs`` and ``accuracy_targets``."""
    outputs, targets = outputs.detach().cpu(), targets.detach().cpu()
    scores = {"l1": l1(outputs, targets), "psnr": psnr(outputs, targets),
              "ssim": ssim(outputs, targets)}
    if labels is not None and classifier is not None:
        scores["accuracy_outputs"] = classifier_accuracy(classifier, outputs, labels)
        scores["accuracy_targets"] = classifier_accuracy(classifier, targets, labels)
    return scores


def held_out_pairs(datamodule: Any, n: int, family: str) -> tuple[Tensor, Tensor, Tensor | None]:
    """Up to ``n`` held-out ``(sources, targets, labels)`` of a paired datamodule (sources and
    targets in [-1, 1]; labels ``None`` when it has none), chosen by
    :data:`~ganlab.core.seeds.RECONSTRUCTION_SEED` (the same pairs in every run)."""
    targets = getattr(datamodule, "held_out_images", None)
    sources = getattr(datamodule, "held_out_sources", None)
    if targets is None or sources is None:
        raise GanlabError(f"model={family} measures on held-out pairs, and "
                          f"{type(datamodule).__name__} has none; use paired data "
                          "(data=paired_digits, data=facades, data=maps) with held-out pairs")
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(
        RECONSTRUCTION_SEED))[: min(int(n), len(targets))]
    labels = getattr(datamodule, "held_out_labels", None)
    return (to_unit_range(sources[order]), to_unit_range(targets[order]),
            None if labels is None else labels[order])


@torch.no_grad()
def translate(net: nn.Module, sources: Tensor, device: torch.device | str,
              batch_size: int = 500) -> Tensor:
    """``net(sources)`` in eval mode, in batches on ``device``, back on the CPU."""
    with evaluating(net):
        return torch.cat([net(part.to(device)).cpu() for part in sources.split(batch_size)])


def triplet_grid(inputs: Tensor, outputs: Tensor, targets: Tensor, per_row: int = 4
                 ) -> tuple[Tensor, int]:
    """``(images, images per row)``: each row holds ``per_row`` triples ``input | output |
    target``. Inputs smaller than the targets (SRGAN's low-resolution ones) are enlarged by
    nearest-neighbour repetition and 1-channel images are repeated to the targets' channels,
    so that all sit in one grid. Extra pairs beyond whole rows are dropped."""
    n = min(len(inputs), len(outputs), len(targets))
    rows = n // per_row
    if rows == 0:
        raise GanlabError(f"a grid of {per_row} triples per row needs at least {per_row} pairs; "
                          f"got {n}")
    shape = targets.shape[1:]

    def fit(images: Tensor) -> Tensor:
        images = images[: rows * per_row].detach().cpu().float()
        if tuple(images.shape[-2:]) != tuple(shape[-2:]):
            images = F.interpolate(images, size=tuple(shape[-2:]), mode="nearest")
        if images.shape[1] != shape[0]:
            images = images.expand(-1, shape[0], -1, -1)
        return images

    triples = torch.stack([fit(inputs), fit(outputs), fit(targets)], 1)  # (n, 3, C, H, W)
    return triples.reshape(-1, *shape), 3 * per_row


__all__ = ["DATA_RANGE", "classifier_accuracy", "held_out_pairs", "l1", "paired_scores", "psnr",
           "ssim", "translate", "triplet_grid"]
