"""Evaluation metrics.

- :func:`mode_coverage`: modes covered, share of high-quality samples and KL to uniform on
  mixtures with known modes (VEEGAN / PacGAN protocol; GAN_SPEC §6).
"""

from ganlab.metrics.mode_coverage import mode_coverage

__all__ = ["mode_coverage"]
