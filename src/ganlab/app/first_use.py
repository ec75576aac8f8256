"""What a run needs that the lab can make itself: the lab classifier of its dataset.

A preset that measures with the lab classifier (``extractor=classifier``, or a conditioning
that judges its samples with it) trains it on first use, before Lightning starts, exactly as
``ganlab-train-classifier data=<name>`` would (the same settings and seed), into the place
where every later run and ``ganlab-eval`` look for it: ``<paths.data_dir>/classifiers/<data>.pt``.
A run on data derived from another dataset (edge maps or canvases of the offline digits, say)
may point at that dataset's default file instead; it is then trained on ``conf/data/<name>.yaml``.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ganlab.app.build import choice
from ganlab.app.cli import config_dir

#: ``_target_`` of the classifier extractor's config.
CLASSIFIER_TARGET = "ganlab.metrics.classifier.load_classifier_extractor"


def classifier_paths(cfg: DictConfig) -> list[Path]:
    """The classifier files that ``cfg``'s run will read (extractor, conditioning, and a model
    family that scores its outputs with one: ``model.classifier``)."""
    from ganlab.data.images import resolve_path

    paths = []
    extractor = cfg.get("extractor")
    if extractor is not None and extractor.get("_target_") == CLASSIFIER_TARGET:
        paths.append(extractor.path)
    conditioning = cfg.get("conditioning")
    if conditioning is not None and conditioning.get("classifier"):
        paths.append(conditioning.classifier)
    model = cfg.get("model")
    if model is not None and isinstance(model.get("classifier"), str):
        paths.append(model.classifier)
    return list(dict.fromkeys(resolve_path(p) for p in paths))


def classifier_config(cfg: DictConfig, out: Path, data_name: str | None = None) -> DictConfig:
    """The config ``ganlab-train-classifier data=<data_name>`` runs with (``None``: this run's
    data), writing ``out``: its own settings and seed, that dataset and this run's data folder."""
    base = OmegaConf.load(Path(config_dir()) / "train_classifier.yaml")
    for key in ("defaults", "hydra"):
        base.pop(key, None)
    node = cfg.data if data_name is None else \
        OmegaConf.load(Path(config_dir()) / "data" / f"{data_name}.yaml")
    data = OmegaConf.to_container(node, resolve=False)  # ${seed}, ${train.*}: the base's
    classifier = {"out": str(out)}
    if data_name is not None:  # recorded in the file instead of this run's data
        classifier["data_name"] = data_name
    return OmegaConf.merge(base, {"data": data, "paths": {"data_dir": str(cfg.paths.data_dir)},
                                  "classifier": classifier})


def labelled_images(datamodule: Any) -> bool:
    """True for image data with class labels (or Stacked MNIST's labelled digits)."""
    if len(tuple(datamodule.data_shape)) != 3:
        return False
    return bool(getattr(datamodule, "per_channel_digits", False)) or \
        getattr(datamodule, "num_classes", None) is not None


def ensure_classifier(cfg: DictConfig, datamodule: Any) -> None:
    """Train each lab classifier the run needs that is missing: its own data's (when those are
    labelled images) or another data config's whose default file it points at (one line
    before, one with its test accuracy after). A file at another place than a default is the
    user's: it is never made here (the run then stops with the loader's one line)."""
    from ganlab.metrics.classifier import train_classifier

    run_data = choice("data")
    for path in classifier_paths(cfg):
        name = default_classifier_data(cfg, path)
        if name is None or path.is_file():
            continue
        if name == run_data:
            if not labelled_images(datamodule):
                continue
            config = classifier_config(cfg, path)
        else:
            config = classifier_config(cfg, path, name)
        print(f"ganlab: no classifier for data={name} yet: training it first (as "
              f"ganlab-train-classifier data={name}), kept at {path}", flush=True)
        with contextlib.redirect_stdout(io.StringIO()):  # its epoch lines
            result = train_classifier(config)
        print(f"ganlab: classifier test accuracy = {result['test_accuracy']:.4f} "
              f"({result['num_test']} test images, {result['seconds']:.0f} s)", flush=True)


def default_classifier_data(cfg: DictConfig, path: Path) -> str | None:
    """The data config whose default classifier file is ``path`` (this run's data, or another
    ``conf/data/<name>.yaml``); ``None`` for a file of the user's own."""
    from ganlab.data.images import resolve_path
    from ganlab.metrics.classifier import classifier_path

    names = [choice("data")] + sorted(p.stem for p in (Path(config_dir()) / "data").glob("*.yaml"))
    for name in names:
        if resolve_path(classifier_path(str(cfg.paths.data_dir), name)) == path:
            return name
    return None
