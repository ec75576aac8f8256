"""Evaluation metrics.

- :func:`mode_coverage`: modes covered, share of high-quality samples and KL to uniform on
  mixtures with known modes (VEEGAN / PacGAN protocol; GAN_SPEC §6).
- :class:`ImageMetrics`: FID, KID, Inception Score and improved precision/recall of generated
  images with a :class:`FeatureExtractor` (``inception`` or ``classifier``), real statistics
  cached on disk (:mod:`ganlab.metrics.stats_cache`), and their protocol
  (:mod:`ganlab.metrics.protocol`).
"""

from ganlab.metrics.extractor import FeatureExtractor
from ganlab.metrics.frechet import frechet_distance
from ganlab.metrics.image_metrics import ImageMetrics
from ganlab.metrics.mode_coverage import mode_coverage
from ganlab.metrics.precision_recall import precision_recall

__all__ = ["FeatureExtractor", "ImageMetrics", "frechet_distance", "mode_coverage",
           "precision_recall"]
