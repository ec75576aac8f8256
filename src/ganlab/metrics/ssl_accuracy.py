"""D's class accuracy on held-out images, for a semi-supervised K+1-class discriminator
(Salimans et al. 2016, §5), as a metric."""

from __future__ import annotations

import torch

from ganlab.core.eval_mode import evaluating
from ganlab.metrics.metric import Evaluation, Metric


class SSLAccuracy(Metric):
    """Needs ``discriminator.classes``: ``ssl_test_accuracy`` = share of the provider's
    ``held_out`` images (uint8, with labels) whose argmax class logit of D is their label."""

    name = "ssl_accuracy"
    needs = frozenset({"discriminator.classes"})

    @torch.no_grad()
    def __call__(self, ev: Evaluation) -> dict[str, float]:
        images, labels = ev.provider("discriminator.classes").held_out
        model = ev.model
        disc = model.discriminator
        correct = 0
        with evaluating(disc):
            for xs, ys in zip(images.split(1000), labels.split(1000), strict=True):
                x = xs.to(model.device).float() / 127.5 - 1
                correct += int((disc.class_logits(x).argmax(1).cpu() == ys).sum())
        return {"ssl_test_accuracy": correct / len(labels), "ssl_test_size": float(len(labels))}
