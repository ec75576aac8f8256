"""The evaluation of a generator: the numbers written to metrics.json.

Toy mixtures get the mode-coverage metrics; image data with a feature extractor gets FID,
KID, Inception Score and precision/recall (:class:`ganlab.metrics.image_metrics.ImageMetrics`);
and every :class:`~ganlab.metrics.metric.Metric` whose capabilities the run provides adds its
numbers (per-class accuracy, reconstruction error, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ganlab.core.config import build
from ganlab.core.errors import GanlabError
from ganlab.core.seeds import EVAL_SEED
from ganlab.metrics.class_metrics import ClassMetrics
from ganlab.metrics.family_metrics import FamilyMetrics
from ganlab.metrics.image_metric import ImageMetric
from ganlab.metrics.image_metrics import ImageMetrics
from ganlab.metrics.metric import Evaluation, Metric, run_providers
from ganlab.metrics.mode_coverage import ModeCoverage
from ganlab.metrics.reconstruction import Reconstruction
from ganlab.metrics.ssl_accuracy import SSLAccuracy

__all__ = ["EVAL_SEED", "build_image_metrics", "default_metrics", "evaluate", "image_protocol"]


def default_metrics(image_metrics: ImageMetrics | None = None) -> list[Metric]:
    """Every metric of the lab, fresh (what ``conf/metrics`` selects by default; for
    evaluations outside a training run)."""
    return [ModeCoverage(), ImageMetric(image_metrics), ClassMetrics(), SSLAccuracy(),
            Reconstruction(), FamilyMetrics()]


def evaluate(
    module: Any,
    datamodule: Any,
    num_samples: int = 2500,
    image_metrics: ImageMetrics | None = None,
    metrics: Sequence[Metric] | None = None,
) -> dict[str, float]:
    """Metrics of ``module``'s generator on ``num_samples`` samples from a fixed noise seed.

    Every metric runs when the run provides what it needs, on one shared set of samples: for
    mixtures with known modes, modes covered, share of high-quality samples and reverse KL
    (PacGAN/VEEGAN protocol, 2,500 samples by default); with ``image_metrics``: fid, kid,
    kid_std, is, is_std, precision, recall; and the others. ``metrics``: the run's metrics
    (set up already); default: :func:`default_metrics` with ``image_metrics``.
    """
    result: dict[str, float] = {"iterations": module.iteration, "num_samples": num_samples}
    ev = Evaluation(module, datamodule, num_samples, run_providers(module, datamodule))
    for metric in default_metrics(image_metrics) if metrics is None else metrics:
        if metric.applies(ev):
            result.update(metric(ev))
    return result


def build_image_metrics(
    extractor_cfg: Any,
    metrics_cfg: Any,
    datamodule: Any,
    data_cfg: dict[str, Any],
    extractor_name: str = "extractor",
) -> ImageMetrics | None:
    """The image metrics of a run (``None`` without an extractor); fails with one line when
    the extractor cannot be built (e.g. no classifier file) or the data are not images."""
    if extractor_cfg is None:
        return None
    shape = tuple(datamodule.data_shape)
    if len(shape) != 3:
        raise GanlabError(
            f"extractor={extractor_name} measures images, but the data have shape {shape}; "
            "leave the extractor out (the default) for non-image data"
        )
    extractor = build(extractor_cfg, f"extractor '{extractor_name}'")

    def get(key: str) -> Any:
        """A setting of the run's ``metrics`` node (its defaults: conf/train.yaml, the one
        table where they are written)."""
        if metrics_cfg is None or key not in metrics_cfg:
            raise GanlabError(f"metrics.{key} is not set (conf/train.yaml has its default)")
        return metrics_cfg[key]

    metrics = ImageMetrics(
        extractor,
        datamodule,
        data_cfg,
        num_real=get("num_real"),
        cache_dir=get("cache_dir"),
        kid_subsets=int(get("kid_subsets")),
        kid_subset_size=int(get("kid_subset_size")),
        is_splits=int(get("is_splits")),
        pr_k=int(get("pr_k")),
    )
    metrics.fid_infinity_points = int(get("fid_infinity_points"))
    metrics.fid_infinity_min = float(get("fid_infinity_min"))
    return metrics


def image_protocol(image_metrics: ImageMetrics, num_samples: int) -> dict[str, Any]:
    """The protocol of ``image_metrics`` on ``num_samples`` generated samples (plus the noise
    seed and, for a classifier, its held-out accuracy)."""
    extra: dict[str, Any] = {"noise_seed": EVAL_SEED}
    accuracy = getattr(image_metrics.extractor, "test_accuracy", None)
    if accuracy is not None:
        extra["classifier_test_accuracy"] = accuracy
    return image_metrics.protocol(num_samples, **extra)
