"""The floor of the image metrics: real images measured against other real images.

    python benchmarks/fid_floor.py [--data mnist_offline] [--num 2500] [--extractor classifier]
    python benchmarks/fid_floor.py --extractor inception [--source fid_helper] [--resize clean]
        [--fid-infinity-points 15]      # the standard weights offline: a GPU job (13 min on 2
                                        # CPU cores for 2,500 vs 2,500)

A generated set of ``--num`` images is scored (by ``ImageMetrics``, exactly as a run's
evaluation does) against the ``--num`` real images that the evaluation picks with its fixed
seed. Here the "generated" set is the held-out half: ``--num`` other real images, none of them
among the picked ones. No generator can be expected to beat the FID, KID and precision/recall
that real data get against real data at the same sample sizes, so this is the number to put
beside a run's FID (FID is biased upwards at finite N; the floor shows by how much).
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ganlab.app.cli import config_dir
from ganlab.data.images import to_unit_range
from ganlab.metrics.image_metrics import REAL_SEED, ImageMetrics


def held_out_half(datamodule, num: int) -> torch.Tensor:
    """``num`` real images that are not among the ``num`` which ``sample_n(num, REAL_SEED)``
    picks (the same permutation, its next ``num`` entries)."""
    size = datamodule.num_samples
    if 2 * num > size:
        raise SystemExit(f"--num {num}: the dataset has {size} images, fewer than 2 x {num}")
    g = torch.Generator()
    g.manual_seed(REAL_SEED)
    idx = torch.randperm(size, generator=g)[num : 2 * num]
    return to_unit_range(datamodule.images[idx])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="mnist_offline")
    parser.add_argument("--extractor", default="classifier")
    parser.add_argument("--num", type=int, default=2500, help="images on each side")
    parser.add_argument("--source", default="auto",
                        help="inception weights: auto, file, download, fid_helper")
    parser.add_argument("--resize", default="legacy", help="inception resize: legacy, clean")
    parser.add_argument("--fid-infinity-points", type=int, default=0,
                        help="FID at this many N from N/10 to N, and FID_inf (0: off)")
    args = parser.parse_args()
    overrides = [f"data={args.data}", f"extractor={args.extractor}"]
    if args.extractor == "inception":
        overrides += [f"extractor.source={args.source}", f"extractor.resize={args.resize}"]
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    from hydra.core.hydra_config import HydraConfig

    HydraConfig.instance().set_config(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    extractor = instantiate(cfg.extractor)
    if torch.cuda.is_available():
        extractor.cuda()
    with tempfile.TemporaryDirectory() as cache:
        metrics = ImageMetrics(extractor, datamodule, OmegaConf.to_container(cfg.data),
                               num_real=args.num, cache_dir=cache)
        metrics.fid_infinity_points = args.fid_infinity_points
        values = metrics(held_out_half(datamodule, args.num))
        protocol = metrics.protocol(args.num)
    print(f"real vs real ({args.data}, {args.extractor}, {args.num} vs {args.num} images):")
    print(json.dumps({"metrics": values, "protocol": protocol}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
