"""Modes of Stacked MNIST captured by a generator (VEEGAN, Srivastava et al. 2017, §5.2;
PacGAN, Lin et al. 2018, §5.2).

Protocol: 26,000 generated samples; each channel is classified by a pretrained MNIST digit
classifier, so each sample falls in one of the 1,000 modes ``100 * d0 + 10 * d1 + d2``.

- ``modes_covered``: modes that received at least one sample (VEEGAN's and PacGAN's "modes").
- ``reverse_kl``: KL(q ‖ u) = Σ_m q_m log(q_m · 1000), q the histogram of the samples over the
  modes and u the uniform distribution of the data (0·log 0 = 0): 0 when q is uniform, log 1000
  ≈ 6.908 when every sample falls in one mode. (The key names match the toy mixtures' metrics
  of :mod:`ganlab.metrics.mode_coverage`; here there is no quality threshold.)

Published values (26,000 samples): VEEGAN Table 2: DCGAN 99 modes / KL 3.4, VEEGAN 150 / 2.95;
PacGAN Table 3: PacDCGAN2 1000 modes / KL ≈ 0.07.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: Samples per evaluation in the VEEGAN and PacGAN tables.
PROTOCOL_SAMPLES = 26_000
#: Modes of Stacked MNIST: 10 digits in each of 3 channels.
NUM_MODES = 1000


def mode_counts(digits: Tensor, num_classes: int = 10) -> Tensor:
    """Digit triples ``(N, 3)`` (ints in 0..K-1) -> the number of samples of each of the ``K³``
    modes, indexed ``K² * d0 + K * d1 + d2`` (int64)."""
    if digits.dim() != 2 or digits.shape[1] != 3:
        raise ValueError(f"digits must have shape (N, 3); got {tuple(digits.shape)}")
    d = digits.to(device="cpu", dtype=torch.int64)
    if d.numel() and (int(d.min()) < 0 or int(d.max()) >= num_classes):
        raise ValueError(f"digits must lie in 0..{num_classes - 1}")
    modes = d[:, 0] * num_classes**2 + d[:, 1] * num_classes + d[:, 2]
    return torch.bincount(modes, minlength=num_classes**3)


def modes_and_kl(counts: Tensor) -> dict[str, float]:
    """``modes_covered``, ``reverse_kl`` = KL(q ‖ uniform), ``num_modes`` and ``num_samples`` of
    a histogram ``counts`` over M modes (q = counts / N); ``reverse_kl`` is ``inf`` for N = 0."""
    counts = counts.to(torch.float64)
    num_modes, total = counts.numel(), float(counts.sum())
    if total == 0:
        kl = float("inf")
    else:
        nz = counts[counts > 0]
        # q_m · M = n_m · M / N, exact for a uniform histogram.
        kl = max(float(((nz / total) * torch.log(nz * num_modes / total)).sum()), 0.0)
    return {
        "modes_covered": int((counts > 0).sum()),
        "reverse_kl": kl,
        "num_modes": num_modes,
        "num_samples": int(total),
    }


def stacked_mode_metrics(digits: Tensor) -> dict[str, float]:
    """The VEEGAN/PacGAN metrics of classified samples: digit triples ``(N, 3)``."""
    return modes_and_kl(mode_counts(digits))


def stacked_modes_from_logits(logits: Tensor) -> dict[str, float]:
    """The metrics from the per-channel classifier extractor's logits ``(N, 1000)``: a sample's
    mode is its argmax, which is the per-channel argmax triple since the logits are
    ``log p(d0) + log p(d1) + log p(d2)`` (reuses the logits the image metrics computed)."""
    if logits.dim() != 2 or logits.shape[1] != NUM_MODES:
        raise ValueError(f"logits must have shape (N, {NUM_MODES}); got {tuple(logits.shape)}")
    modes = logits.detach().argmax(dim=1).cpu()
    return modes_and_kl(torch.bincount(modes, minlength=NUM_MODES))


@torch.no_grad()
def classify_stacks(
    images: Tensor, digits_of: Callable[[Tensor], Tensor], batch_size: int = 1000
) -> Tensor:
    """The digit of each channel of ``images`` ``(N, 3, H, W)`` in [-1, 1], ``(N, 3)``.

    ``digits_of`` maps a batch of stacks to its per-channel digits, e.g.
    :meth:`ganlab.metrics.classifier.ClassifierExtractor.digits` of the extractor that
    ``ganlab-train-classifier data=stacked_mnist_offline`` saves.
    """
    out = [digits_of(part).cpu() for part in images.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, 3, dtype=torch.int64)


def stacked_mnist_modes(
    images: Tensor, extractor: torch.nn.Module, batch_size: int = 1000
) -> dict[str, float]:
    """Modes covered and KL to uniform of generated stacks (26,000 in the protocol), each
    channel classified by ``extractor`` (a per-channel
    :class:`ganlab.metrics.classifier.ClassifierExtractor`)."""
    was_training = extractor.training
    extractor.eval()
    try:
        device = next(iter(extractor.parameters()), torch.empty(0)).device
        digits = classify_stacks(images, lambda x: extractor.digits(x.to(device)), batch_size)
    finally:
        extractor.train(was_training)
    return stacked_mode_metrics(digits)
