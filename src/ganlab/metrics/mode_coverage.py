"""Mode-collapse metrics on mixtures with known modes (the protocol of VEEGAN, Srivastava et al.
2017, and PacGAN, Lin et al. 2018: 2-D ring of 8 and grid of 25 Gaussians)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ganlab.metrics.metric import Evaluation, Metric


def _as_points(t: Tensor, name: str) -> Tensor:
    t = t.detach().to(device="cpu", dtype=torch.float64)
    if t.dim() == 1:
        t = t.unsqueeze(1)  # 1-D mixture: one coordinate per point
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape (N, d) or (N,); got {tuple(t.shape)}")
    return t


def mode_coverage(
    samples: Tensor, centers: Tensor, std: float, threshold: float = 3.0
) -> dict[str, float]:
    """Mode-collapse metrics on a mixture with known modes (PacGAN/VEEGAN protocol; 2,500 samples
    by default in the trainer).

    Each sample is assigned to its nearest mode centre; it is high-quality when within
    ``threshold * std`` of that centre (Euclidean distance).

    - ``modes_covered``: number of modes with at least one high-quality sample.
    - ``hq_fraction``: share of high-quality samples (0..1).
    - ``reverse_kl``: KL(q ‖ uniform) = Σ_m q_m log(q_m · M), q = histogram of high-quality
      samples over the M modes (0·log 0 = 0); ``inf`` when no sample is high-quality.
    - ``num_modes`` (M) and ``num_samples``.

    ``samples`` is ``(N, d)`` and ``centers`` ``(M, d)``; 1-D tensors are read as ``d = 1``.
    """
    x = _as_points(samples, "samples")
    c = _as_points(centers, "centers")
    if x.shape[1] != c.shape[1]:
        raise ValueError(f"samples have dimension {x.shape[1]} but centers {c.shape[1]}")
    num_modes, num_samples = c.shape[0], x.shape[0]
    if num_modes == 0:
        raise ValueError("centers is empty")
    if std <= 0:
        raise ValueError(f"std must be positive; got {std}")
    if num_samples == 0:
        return {
            "modes_covered": 0,
            "hq_fraction": 0.0,
            "reverse_kl": math.inf,
            "num_modes": num_modes,
            "num_samples": 0,
        }

    # Exact pairwise distances (the matmul shortcut loses precision near 0).
    dist = torch.cdist(x, c, compute_mode="donot_use_mm_for_euclid_dist")
    nearest_dist, nearest = dist.min(dim=1)
    hq = nearest_dist <= threshold * std
    counts = torch.bincount(nearest[hq], minlength=num_modes).to(torch.float64)
    num_hq = int(hq.sum())

    if num_hq == 0:
        reverse_kl = math.inf
    else:
        # q_m · M = counts_m · M / num_hq, exact for a uniform histogram.
        nz = counts[counts > 0]
        reverse_kl = float(((nz / num_hq) * torch.log(nz * num_modes / num_hq)).sum())
        reverse_kl = max(reverse_kl, 0.0)  # clip float round-off below 0
    return {
        "modes_covered": int((counts > 0).sum()),
        "hq_fraction": num_hq / num_samples,
        "reverse_kl": reverse_kl,
        "num_modes": num_modes,
        "num_samples": num_samples,
    }


class ModeCoverage(Metric):
    """Needs ``data.mode_centers``: :func:`mode_coverage` of the evaluation's samples (the
    PacGAN/VEEGAN protocol: 2,500 samples, 3 standard deviations)."""

    name = "mode_coverage"
    needs = frozenset({"data.mode_centers"})

    def __call__(self, ev: Evaluation) -> dict[str, float]:
        data = ev.datamodule
        return mode_coverage(ev.samples().float().cpu(), data.mode_centers, data.mode_std)
