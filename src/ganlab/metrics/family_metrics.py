"""The numbers a model family measures itself (e.g. the adversarial autoencoder's held-out
reconstruction error and MMD between its aggregated posterior and its prior), as a metric."""

from __future__ import annotations

from typing import Any

from ganlab.metrics.metric import Evaluation, Metric


class FamilyMetrics(Metric):
    """Needs ``model.metrics``: the provider's ``metrics(datamodule, num_samples, device)``,
    and its ``protocol()`` in the run's protocol."""

    name = "family_metrics"
    needs = frozenset({"model.metrics"})

    def __init__(self) -> None:
        self._provider: Any = None

    def __call__(self, ev: Evaluation) -> dict[str, float]:
        self._provider = ev.provider("model.metrics")
        return self._provider.metrics(ev.datamodule, ev.num_samples, ev.model.device)

    def protocol(self) -> dict[str, Any]:
        """The provider's protocol of its last measurement."""
        return {} if self._provider is None else dict(self._provider.protocol())
