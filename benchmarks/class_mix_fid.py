"""How much of a generator's classifier FID its class mix alone explains.

    python benchmarks/class_mix_fid.py --ckpt <run>/checkpoints/last.ckpt [--num 2500]
        [--samples 5000]

The lab classifier labels ``--samples`` images of the checkpoint's generator; that gives the
generator's class histogram. Then real digits are scored against real digits twice, with the
lab classifier's features: the ``--num`` real images an evaluation picks (its fixed seed) against
``--num`` other real images drawn per class (with replacement inside each class) in uniform
proportions, and against as many drawn in the generator's proportions. The difference of the
two FIDs is what the class mix costs a generator whose every sample were a real digit. Features
and labels come from the lab classifier (the run's ``extractor.path``, or ``--classifier``).
"""

from __future__ import annotations

import argparse
import json

import torch
from omegaconf import OmegaConf
from torch import Tensor

from ganlab.app.build import build_datamodule, build_module
from ganlab.core.checkpoints import load_checkpoint
from ganlab.data.images import to_unit_range
from ganlab.metrics.classifier import load_classifier_extractor
from ganlab.metrics.frechet import frechet_distance, mean_and_covariance
from ganlab.metrics.image_metrics import REAL_SEED


def counts_for(histogram: Tensor, n: int) -> Tensor:
    """``n`` split in the proportions of ``histogram`` (largest remainders, so they sum to
    ``n``)."""
    share = histogram.double() / histogram.sum() * n
    counts = share.floor().long()
    rest = n - int(counts.sum())
    order = torch.argsort(share - counts, descending=True, stable=True)
    counts[order[:rest]] += 1
    return counts


def draw_per_class(labels: Tensor, pool: Tensor, counts: Tensor,
                   generator: torch.Generator) -> Tensor:
    """Indices of ``pool``'s images: ``counts[k]`` of class ``k`` each, uniformly with
    replacement among the pool's images of that class."""
    out = []
    for k, count in enumerate(counts.tolist()):
        members = pool[labels[pool] == k]
        if count and not len(members):
            raise SystemExit(f"no real image of class {k} left to draw")
        out.append(members[torch.randint(len(members), (count,), generator=generator)])
    return torch.cat(out)


def fid(a: Tensor, b: Tensor) -> float:
    """FID of two feature sets (float64 statistics, as the lab's metric)."""
    return float(frechet_distance(*mean_and_covariance(a.double()),
                                  *mean_and_covariance(b.double())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--num", type=int, default=2500, help="real images on each side")
    parser.add_argument("--samples", type=int, default=5000, help="generated images labelled")
    parser.add_argument("--classifier", default=None,
                        help="the classifier's file (default: the run's extractor's)")
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.ckpt)
    cfg = OmegaConf.create(checkpoint["ganlab"]["config"])
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    module.load_state_dict(checkpoint["state_dict"])
    datamodule.setup("fit")
    path = args.classifier or cfg.get("extractor", {}).get("path")
    if not path:
        raise SystemExit("the run has no classifier extractor: pass --classifier <file>")
    extractor = load_classifier_extractor(path)
    with torch.no_grad():
        _, fake_logits = extractor(module.generate(args.samples, seed=REAL_SEED + 1))
        features, logits = extractor(to_unit_range(datamodule.images))
    k = logits.shape[1]
    histogram = torch.bincount(fake_logits.argmax(1), minlength=k)
    labels = logits.argmax(1)
    g = torch.Generator().manual_seed(REAL_SEED)
    perm = torch.randperm(len(features), generator=g)
    if 2 * args.num > len(perm):
        raise SystemExit(f"--num {args.num}: the dataset has {len(perm)} images")
    picked, pool = perm[: args.num], perm[args.num:]
    draw = torch.Generator().manual_seed(0)
    uniform = draw_per_class(labels, pool, counts_for(torch.ones(k), args.num), draw)
    mixed = draw_per_class(labels, pool, counts_for(histogram, args.num), draw)
    print(json.dumps({
        "generator_histogram": histogram.tolist(),
        "confident_fraction": float((fake_logits.softmax(1).max(1).values > 0.9).float().mean()),
        "real_confident_fraction": float((logits.softmax(1).max(1).values > 0.9).float().mean()),
        "fid_real_uniform_mix": fid(features[picked], features[uniform]),
        "fid_real_generator_mix": fid(features[picked], features[mixed]),
    }, indent=2))


if __name__ == "__main__":
    main()
