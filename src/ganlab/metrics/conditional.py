"""Metrics of class-conditional generators: does ``G(z, y)`` look like class ``y``?

- Per-class accuracy: ``num_per_class`` samples are requested for each class ``k``; a judge
  (the lab's digit classifier for images, the nearest mode centre for Gaussian mixtures, whose
  labels are the mode indices) predicts their class; ``class_accuracy_<k>`` is the share
  predicted as ``k`` and ``class_accuracy`` their mean. Chance is ``1/K``; it is high only when
  conditioning works.
- Intra-class FID (Miyato & Koyama 2018 §5): the Fréchet distance between the features of the
  real images of class ``k`` and of the samples requested for ``k``, averaged over classes.
  Features here are the classifier's penultimate layer (no Inception weights offline), so the
  numbers compare runs of this lab, not papers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ganlab.core.seeds import CLASS_SEED
from ganlab.metrics.frechet import frechet_distance, mean_and_covariance


def requested_labels(num_classes: int, num_per_class: int) -> Tensor:
    """``0, ..., 0, 1, ..., 1, ..., K-1``: ``num_per_class`` requests of each class."""
    return torch.arange(num_classes).repeat_interleave(num_per_class)


def nearest_mode(points: Tensor, centers: Tensor) -> Tensor:
    """Index of the nearest mode centre of each row of ``points`` ``(N, d)``."""
    return torch.cdist(points.float(), centers.float().to(points.device)).argmin(1)


def accuracy_per_class(predicted: Tensor, requested: Tensor, num_classes: int
                       ) -> dict[str, float]:
    """``class_accuracy_<k>`` = share of the samples requested as ``k`` predicted as ``k``, and
    ``class_accuracy``, their mean over classes."""
    predicted, requested = predicted.cpu(), requested.cpu()
    result: dict[str, float] = {}
    for k in range(num_classes):
        mine = requested == k
        result[f"class_accuracy_{k}"] = float((predicted[mine] == k).float().mean())
    result["class_accuracy"] = sum(result.values()) / num_classes
    return result


def per_class_accuracy(module: Any, predict: Callable[[Tensor], Tensor],
                       num_classes: int, num_per_class: int) -> dict[str, float]:
    """Per-class accuracy of ``predict`` (samples -> class indices) on samples of ``module``
    requested class by class, from the fixed seed :data:`CLASS_SEED`."""
    labels = requested_labels(num_classes, num_per_class)
    samples = module.generate_classes(labels, seed=CLASS_SEED)
    return accuracy_per_class(predict(samples).reshape(-1), labels, num_classes)


def intra_class_fid(fake_features: Tensor, fake_labels: Tensor, real_features: Tensor,
                    real_labels: Tensor, num_classes: int) -> dict[str, float]:
    """``intra_class_fid_<k>``: Fréchet distance between the real and generated features of
    class ``k``; ``intra_class_fid``: their mean over classes."""
    result: dict[str, float] = {}
    for k in range(num_classes):
        mu_r, s_r = mean_and_covariance(real_features[real_labels.cpu() == k])
        mu_f, s_f = mean_and_covariance(fake_features[fake_labels.cpu() == k])
        result[f"intra_class_fid_{k}"] = frechet_distance(mu_r, s_r, mu_f, s_f)
    result["intra_class_fid"] = sum(result.values()) / num_classes
    return result


@torch.no_grad()
def classifier_metrics(module: Any, extractor, real_features: Tensor, real_labels: Tensor,
                       num_classes: int, num_per_class: int) -> dict[str, float]:
    """Per-class accuracy and intra-class FID measured with the lab's classifier
    (:class:`ganlab.metrics.classifier.ClassifierExtractor`); ``real_features``: the
    extractor's features of the real images, whose classes are ``real_labels``."""
    from ganlab.metrics.extractor import extract

    labels = requested_labels(num_classes, num_per_class)
    samples = module.generate_classes(labels, seed=CLASS_SEED)
    fake_features, fake_logits = extract(extractor, samples)
    assert fake_logits is not None
    result = accuracy_per_class(fake_logits.argmax(1), labels, num_classes)
    result.update(intra_class_fid(fake_features, labels, real_features, real_labels, num_classes))
    return result
