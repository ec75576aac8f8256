"""The metric interface: an evaluation plugin declares the capabilities it needs and measures.

A :class:`Metric` runs in an evaluation when everything it :attr:`~Metric.needs` is provided by
the run (the family, its plugins, the data); the object that provides a capability is its
*provider* (:meth:`Evaluation.provider`), whose documented attributes the metric may read
(e.g. the conditioning that provides ``generator.classes`` names its classifier).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ganlab.core.seeds import EVAL_SEED
from ganlab.data.base import data_capabilities


@dataclass
class Evaluation:
    """What a metric receives: the trained ``model`` (the adapter: ``generate``,
    ``generate_classes``, ``reconstruct``, ``device``, ``family``), the data, the number of
    samples, and the capabilities of the run with their providers."""

    model: Any
    datamodule: Any
    num_samples: int
    providers: dict[str, Any] = field(default_factory=dict)
    _samples: Any = None

    def samples(self) -> Any:
        """The evaluation's ``num_samples`` samples of the evaluated generator, from the fixed
        :data:`~ganlab.core.seeds.EVAL_SEED`; drawn once and shared by every metric."""
        if self._samples is None:
            self._samples = self.model.generate(self.num_samples, seed=EVAL_SEED)
        return self._samples

    @property
    def provided(self) -> frozenset[str]:
        return frozenset(self.providers)

    def provider(self, capability: str) -> Any:
        """The object that provides ``capability`` in this run."""
        return self.providers[capability]


def run_providers(model: Any, datamodule: Any) -> dict[str, Any]:
    """Capability -> provider for ``model``'s family, its plugins and ``datamodule``."""
    providers: dict[str, Any] = {}
    for cap in data_capabilities(datamodule):
        providers[cap] = datamodule
    family = getattr(model, "family", None)
    for plugin in getattr(family, "plugins", ()):
        for cap in plugin.provides:
            providers.setdefault(cap, plugin)
    for cap in getattr(family, "provides", ()):
        providers.setdefault(cap, family)
    return providers


@dataclass
class MetricSetup:
    """What a metric may need once before the first evaluation: the run's image metrics
    (features of its extractor and the cached real statistics), when it has an extractor."""

    image_metrics: Any = None


class Metric:
    """Base of every metric: an evaluation plugin, chosen by the ``metrics`` config group."""

    name: ClassVar[str] = "metric"
    needs: ClassVar[frozenset[str]] = frozenset()

    def setup(self, setup: MetricSetup) -> None:
        """Called once before the first evaluation of a run."""

    def applies(self, ev: Evaluation) -> bool:
        """Whether the run provides what this metric needs."""
        return self.needs <= ev.provided

    def __call__(self, ev: Evaluation) -> dict[str, float]:
        raise NotImplementedError

    def protocol(self) -> dict[str, Any]:
        """How this metric measured (recorded with the numbers); nothing by default."""
        return {}
