"""The final evaluation of a generator: the numbers written to metrics.json."""

from __future__ import annotations

from typing import Any

from ganlab.metrics.mode_coverage import mode_coverage
from ganlab.module import GANModule

#: Noise seed of every evaluation: all runs are measured on the same z.
EVAL_SEED = 12345


def evaluate(module: GANModule, datamodule: Any, num_samples: int = 2500) -> dict[str, float]:
    """Metrics of ``module``'s generator on ``num_samples`` samples from a fixed noise seed.

    For mixtures with known modes (``datamodule.mode_centers``): modes covered, share of
    high-quality samples and reverse KL (PacGAN/VEEGAN protocol, 2,500 samples by default).
    """
    result: dict[str, float] = {"iterations": module.iteration, "num_samples": num_samples}
    centers = getattr(datamodule, "mode_centers", None)
    if centers is not None:
        samples = module.generate(num_samples, seed=EVAL_SEED).float().cpu()
        result.update(mode_coverage(samples, centers, datamodule.mode_std))
    return result
