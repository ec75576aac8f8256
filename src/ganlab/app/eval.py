"""``ganlab-eval``: evaluate a checkpoint (``ckpt_path=<file>``) or a folder of any model's
samples (``samples_dir=<folder> data=<name> extractor=<name>``) and print the metrics as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ganlab.app.build import build, build_datamodule, build_module, choice
from ganlab.app.cli import config_dir, entry_point
from ganlab.core.checkpoints import load_checkpoint
from ganlab.core.errors import GanlabError
from ganlab.metrics.evaluate import build_image_metrics, evaluate, image_protocol


def metric_defaults() -> dict[str, Any]:
    """The metric settings' defaults: conf/train.yaml's ``metrics`` node, the one table where
    they are written (``cache_dir`` resolved against ``paths``; ``use`` left out)."""
    train = OmegaConf.load(Path(config_dir()) / "train.yaml")
    paths = OmegaConf.load(Path(config_dir()) / "paths" / "default.yaml")
    merged = OmegaConf.merge({"paths": paths}, {"metrics": train.metrics})
    settings = OmegaConf.to_container(merged.metrics, resolve=True)
    assert isinstance(settings, dict)
    settings.pop("use", None)
    return {str(k): v for k, v in settings.items()}


def _settings(*layers: Any) -> dict[str, Any]:
    """Metric settings: the defaults, then later layers' non-null values win."""
    out: dict[str, Any] = metric_defaults()
    for layer in layers:
        for key, value in (dict(layer) if layer is not None else {}).items():
            if value is not None:
                out[key] = value
    return out


def evaluate_checkpoint(
    ckpt_path: str,
    num_samples: int | None = None,
    extractor: Any = None,
    metrics: Any = None,
) -> dict[str, Any]:
    """The metrics of the generator stored in ``ckpt_path`` (as written to metrics.json, with
    ``protocol`` when there are image metrics). ``extractor`` (a config) replaces the run's;
    non-null ``metrics`` settings replace the run's."""
    checkpoint = load_checkpoint(ckpt_path)
    cfg = OmegaConf.create(checkpoint["ganlab"]["config"])
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    module.load_state_dict(checkpoint["state_dict"])
    module.iteration = int(checkpoint["ganlab"]["iteration"])
    n = num_samples if num_samples is not None else cfg.metrics.num_samples
    settings = _settings(cfg.get("metrics"), metrics)
    extractor_cfg = extractor if extractor is not None else cfg.get("extractor")
    weights = settings.get("inception_weights")
    if extractor is None and weights and extractor_cfg is not None and "weights" in extractor_cfg:
        extractor_cfg = OmegaConf.merge(extractor_cfg, {"weights": weights})
    data_cfg = OmegaConf.to_container(cfg.data, resolve=True)
    image_metrics = build_image_metrics(extractor_cfg, settings, datamodule, data_cfg,
                                        choice("extractor") if extractor is not None
                                        else "extractor")
    result: dict[str, Any] = evaluate(module, datamodule, n, image_metrics)
    if image_metrics is not None:
        result["protocol"] = image_protocol(image_metrics, n)
    return result


def load_samples(folder: str | Path, shape: tuple[int, int, int],
                 limit: int | None = None) -> tuple[torch.Tensor, str]:
    """Images of ``folder`` (png/jpg/..., sorted by path, searched recursively) as float
    ``(N, C, H, W)`` in [-1, 1] at ``shape``, and how they were resized (protocol text)."""
    from PIL import Image, UnidentifiedImageError

    from ganlab.data.images import IMAGE_EXTENSIONS, resolve_path, to_unit_range

    root = resolve_path(folder)
    if not root.is_dir():
        raise GanlabError(f"samples_dir {root} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if limit is not None:
        files = files[:limit]
    if not files:
        exts = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        raise GanlabError(f"samples_dir {root} holds no images ({exts})")
    channels, height, width = shape
    sizes, images = set(), []
    for file in files:
        try:
            with Image.open(file) as im:
                im = im.convert("L" if channels == 1 else "RGB")
                sizes.add(im.size)
                if im.size != (width, height):
                    im = im.resize((width, height), Image.Resampling.BILINEAR)
                t = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
        except (OSError, UnidentifiedImageError) as err:
            raise GanlabError(f"cannot read image {file}: {err}") from None
        images.append(t.reshape(height, width, channels).permute(2, 0, 1))
    other = sorted(s for s in sizes if s != (width, height))
    resize = "none" if not other else (
        "PIL bilinear from " + ", ".join(f"{w}x{h}" for w, h in other) + f" to {width}x{height}")
    return to_unit_range(torch.stack(images)), resize


def evaluate_samples(cfg: DictConfig) -> dict[str, Any]:
    """The image metrics of the samples in ``cfg.samples_dir`` against ``cfg.data``."""
    if cfg.get("data") is None:
        options = sorted(p.stem for p in (Path(config_dir()) / "data").glob("*.yaml"))
        raise GanlabError("samples_dir needs the dataset to compare with: data=<name>; valid: "
                          + ", ".join(options))
    if cfg.get("extractor") is None:
        raise GanlabError("samples_dir needs a feature extractor: extractor=classifier or "
                          "extractor=inception")
    datamodule = build(cfg.data, "data")
    datamodule.setup("fit")
    shape = tuple(datamodule.data_shape)
    if len(shape) != 3:
        raise GanlabError(f"data={choice('data')} is not an image dataset (shape {shape})")
    settings = _settings({"cache_dir": f"{cfg.paths.data_dir}/stats"}, cfg.metrics)
    image_metrics = build_image_metrics(
        cfg.extractor, settings, datamodule, OmegaConf.to_container(cfg.data, resolve=True),
        choice("extractor"))
    assert image_metrics is not None
    samples, resize = load_samples(cfg.samples_dir, shape, cfg.metrics.get("num_samples"))
    result: dict[str, Any] = {"num_samples": samples.shape[0], **image_metrics(samples)}
    result["protocol"] = image_metrics.protocol(
        samples.shape[0], samples_dir=str(Path(cfg.samples_dir)), samples_resize=resize)
    return result


@entry_point("eval")
def main(cfg: DictConfig) -> None:
    if (cfg.get("ckpt_path") is None) == (cfg.get("samples_dir") is None):
        raise GanlabError("give ckpt_path=<checkpoint> or samples_dir=<folder of images> "
                          "(with data=<name> extractor=<name>), not both")
    if cfg.ckpt_path is not None:
        overridden = cfg.get("extractor")
        metrics = evaluate_checkpoint(cfg.ckpt_path, cfg.metrics.num_samples, overridden,
                                      cfg.metrics)
    else:
        metrics = evaluate_samples(cfg)
    print(json.dumps(metrics, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
