"""The evaluation of a generator: the numbers written to metrics.json.

Toy mixtures get the mode-coverage metrics; image data with a feature extractor gets FID,
KID, Inception Score and precision/recall (:class:`ganlab.metrics.image_metrics.ImageMetrics`).
"""

from __future__ import annotations

from typing import Any

from ganlab.adapter.module import GANModule
from ganlab.core.errors import GanlabError
from ganlab.metrics.image_metrics import ImageMetrics
from ganlab.metrics.mode_coverage import mode_coverage

#: Noise seed of every evaluation: all runs are measured on the same z.
EVAL_SEED = 12345


def evaluate(
    module: GANModule,
    datamodule: Any,
    num_samples: int = 2500,
    image_metrics: ImageMetrics | None = None,
) -> dict[str, float]:
    """Metrics of ``module``'s generator on ``num_samples`` samples from a fixed noise seed.

    For mixtures with known modes (``datamodule.mode_centers``): modes covered, share of
    high-quality samples and reverse KL (PacGAN/VEEGAN protocol, 2,500 samples by default).
    With ``image_metrics``: fid, kid, kid_std, is, is_std, precision, recall.
    """
    result: dict[str, float] = {"iterations": module.iteration, "num_samples": num_samples}
    centers = getattr(datamodule, "mode_centers", None)
    if centers is not None:
        samples = module.generate(num_samples, seed=EVAL_SEED).float().cpu()
        result.update(mode_coverage(samples, centers, datamodule.mode_std))
    if image_metrics is not None:
        result.update(image_metrics(module.generate(num_samples, seed=EVAL_SEED)))
    # Conditional runs: per-class accuracy, intra-class FID, ... (ganlab.conditioning, D2).
    result.update(module.conditioning.metrics(module, datamodule, num_samples))
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
    from ganlab.app.build import build

    extractor = build(extractor_cfg, f"extractor '{extractor_name}'")

    def get(key: str, default: Any) -> Any:
        value = metrics_cfg.get(key) if metrics_cfg is not None else None
        return default if value is None else value

    metrics = ImageMetrics(
        extractor,
        datamodule,
        data_cfg,
        num_real=get("num_real", None),
        cache_dir=get("cache_dir", "data/stats"),
        kid_subsets=int(get("kid_subsets", 100)),
        kid_subset_size=int(get("kid_subset_size", 1000)),
        is_splits=int(get("is_splits", 10)),
        pr_k=int(get("pr_k", 3)),
    )
    metrics.fid_infinity_points = int(get("fid_infinity_points", 0))
    metrics.fid_infinity_min = float(get("fid_infinity_min", 0.1))
    return metrics


def image_protocol(image_metrics: ImageMetrics, num_samples: int) -> dict[str, Any]:
    """The protocol of ``image_metrics`` on ``num_samples`` generated samples (plus the noise
    seed and, for a classifier, its held-out accuracy)."""
    extra: dict[str, Any] = {"noise_seed": EVAL_SEED}
    accuracy = getattr(image_metrics.extractor, "test_accuracy", None)
    if accuracy is not None:
        extra["classifier_test_accuracy"] = accuracy
    return image_metrics.protocol(num_samples, **extra)
