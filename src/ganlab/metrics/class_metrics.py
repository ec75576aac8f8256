"""Per-class accuracy and intra-class FID of class-conditional generators, as a metric
(:mod:`ganlab.metrics.conditional` has the formulas)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganlab.metrics import conditional
from ganlab.metrics.metric import Evaluation, Metric


class ClassMetrics(Metric):
    """Needs ``generator.classes``. ``num_samples // K`` samples requested per class; judged
    by the nearest mode on mixtures with known modes, else by the lab classifier that the
    provider names (its ``classifier`` file; missing: skipped with one note)."""

    name = "class_metrics"
    needs = frozenset({"generator.classes"})

    def __init__(self) -> None:
        self._extractor: Any = None
        self._real_features: Tensor | None = None
        self._noted = False

    def __call__(self, ev: Evaluation) -> dict[str, float]:
        provider, datamodule, model = ev.provider("generator.classes"), ev.datamodule, ev.model
        k = int(provider.num_classes)
        per_class = max(ev.num_samples // k, 2)
        centers = getattr(datamodule, "mode_centers", None)
        if centers is not None:
            return conditional.per_class_accuracy(
                model, lambda x: conditional.nearest_mode(x, centers), k, per_class
            )
        extractor = self._load_extractor(getattr(provider, "classifier", None), model.device)
        if extractor is None or not hasattr(datamodule, "images"):
            return {}
        if self._real_features is None:  # the real images do not change: extract them once
            from ganlab.metrics.extractor import extract

            self._real_features = torch.cat([
                extract(extractor, part.float() / 127.5 - 1)[0]
                for part in datamodule.images.split(5000)
            ])
        return conditional.classifier_metrics(
            model, extractor, self._real_features, datamodule.labels, k, per_class
        )

    def _load_extractor(self, classifier: str | None, device: torch.device) -> Any:
        if self._extractor is None and classifier and not self._noted:
            from ganlab.data.images import resolve_path
            from ganlab.metrics.classifier import load_classifier_extractor

            path = resolve_path(classifier)
            if not path.is_file():
                self._noted = True
                print(f"ganlab: no classifier at {path}: per-class accuracy and intra-class "
                      f"FID skipped (train one with: ganlab-train-classifier data={path.stem})")
                return None
            self._extractor = load_classifier_extractor(path)
        if self._extractor is not None:
            self._extractor.to(device)
        return self._extractor
