"""FID, KID, Inception Score and precision/recall of one evaluation, as a metric
(:class:`ganlab.metrics.image_metrics.ImageMetrics` computes them with its extractor)."""

from __future__ import annotations

from ganlab.metrics.image_metrics import ImageMetrics
from ganlab.metrics.metric import Evaluation, Metric


class ImageMetric(Metric):
    """Needs ``data.images``: ``image_metrics`` of the evaluation's shared samples (their
    features are extracted once, inside :class:`ImageMetrics`)."""

    name = "image_metrics"
    needs = frozenset({"data.images"})

    def __init__(self, image_metrics: ImageMetrics) -> None:
        self.image_metrics = image_metrics

    def __call__(self, ev: Evaluation) -> dict[str, float]:
        return self.image_metrics(ev.samples())
