"""FID, KID, Inception Score and precision/recall of one evaluation, as a metric
(:class:`ganlab.metrics.image_metrics.ImageMetrics` computes them with its extractor)."""

from __future__ import annotations

from ganlab.metrics.image_metrics import ImageMetrics
from ganlab.metrics.metric import Evaluation, Metric, MetricSetup


class ImageMetric(Metric):
    """Needs ``data.images`` and an extractor (``extractor=...``, which gives the run its
    :class:`ImageMetrics`): FID, KID, IS and precision/recall of the evaluation's shared
    samples (their features are extracted once, inside :class:`ImageMetrics`)."""

    name = "image_metrics"
    needs = frozenset({"data.images"})

    def __init__(self, image_metrics: ImageMetrics | None = None) -> None:
        self.image_metrics = image_metrics

    def setup(self, setup: MetricSetup) -> None:
        self.image_metrics = setup.image_metrics

    def applies(self, ev: Evaluation) -> bool:
        return self.image_metrics is not None and super().applies(ev)

    def __call__(self, ev: Evaluation) -> dict[str, float]:
        assert self.image_metrics is not None
        return self.image_metrics(ev.samples())
