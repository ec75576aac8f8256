"""Evaluation metrics, one module each; each metric of a run is a
:class:`ganlab.metrics.metric.Metric` (the ``metrics`` config group chooses them).

- :mod:`~ganlab.metrics.mode_coverage`: modes covered, share of high-quality samples and KL to
  uniform on mixtures with known modes (VEEGAN / PacGAN protocol; GAN_SPEC §6).
- :mod:`~ganlab.metrics.image_metrics`: FID, KID, Inception Score and improved
  precision/recall of generated images with a feature extractor (``inception`` or
  ``classifier``), real statistics cached on disk (:mod:`~ganlab.metrics.stats_cache`), and
  their protocol (:mod:`~ganlab.metrics.protocol`).
- :mod:`~ganlab.metrics.class_metrics`, :mod:`~ganlab.metrics.ssl_accuracy`,
  :mod:`~ganlab.metrics.reconstruction`, :mod:`~ganlab.metrics.family_metrics`: the metrics of
  conditional generators, semi-supervised discriminators, encoders and model families.

(No names are re-exported here: a module and a function of the same name would shadow each
other for Hydra's ``_target_``.)
"""
