"""``ganlab-train-classifier data=<name>``: train the classifier behind the classifier metrics
(classifier FID and score, Stacked MNIST modes) and save it with its test accuracy."""

from __future__ import annotations

from omegaconf import DictConfig

from ganlab.app.cli import entry_point
from ganlab.metrics.classifier import train_classifier


@entry_point("train_classifier")
def main(cfg: DictConfig) -> float:
    """Train, save, print the test accuracy (and return it, e.g. for a sweep)."""
    return float(train_classifier(cfg)["test_accuracy"])


if __name__ == "__main__":
    main()
