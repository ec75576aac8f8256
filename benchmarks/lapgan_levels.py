"""Which level of a trained LAPGAN limits its samples: classifier FID of its samples when the
coarser levels are real instead of generated.

    python benchmarks/lapgan_levels.py RUN_DIR [NUM]

From the run's ``checkpoints/last.ckpt`` (a ``model=lapgan`` run on ``data=mnist_offline``), NUM
(default 2,500) samples each of: the pyramid itself (``Ĩ_K`` generated, as the run measures it);
real ``I_K`` (the Gaussian pyramid of NUM real digits) refined by the trained ``G_{K-1}, ...,
G_0``; real ``I_1`` refined by ``G_0`` alone; and the real digits (the floor of this protocol),
each against the same NUM other real digits, with the lab classifier's features and
:func:`ganlab.metrics.frechet.frechet_distance`. Real images and noise come from fixed seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import OmegaConf

from ganlab.app.build import build, build_datamodule
from ganlab.core.eval_mode import evaluating
from ganlab.core.seeds import EVAL_SEED
from ganlab.data.images import to_unit_range
from ganlab.metrics.classifier import load_classifier_extractor
from ganlab.metrics.extractor import extract
from ganlab.metrics.frechet import frechet_distance
from ganlab.nets.lapgan import gaussian_pyramid, up


def fid(features: torch.Tensor, real: torch.Tensor) -> float:
    f, r = features.double(), real.double()
    return float(frechet_distance(f.mean(0), torch.cov(f.T), r.mean(0), torch.cov(r.T)))


@torch.no_grad()
def main(run: Path, num: int) -> None:
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    cfg = OmegaConf.create(ckpt["ganlab"]["config"])
    datamodule = build_datamodule(cfg)
    family = get_class(cfg.model._target_).from_config(cfg, datamodule, build)
    for role, net in family.networks().items():
        net.load_state_dict({k[len(role) + 1:]: v for k, v in ckpt["state_dict"].items()
                             if k.startswith(role + ".")})
    extractor = load_classifier_extractor(cfg.extractor.path)
    order = torch.randperm(len(datamodule.images), generator=torch.Generator().manual_seed(1))
    images = to_unit_range(datamodule.images)
    real_a, real_b = images[order[:num]], images[order[num:2 * num]]
    reference = extract(extractor, real_b)[0]
    gen = torch.Generator().manual_seed(EVAL_SEED)
    levels = family.levels
    with evaluating(*family.networks().values()):
        out = {"pyramid (every level generated)": family.decode(family.sample_latent(num, gen))}
        pyramid = gaussian_pyramid(real_a, levels)
        for start in range(levels, 0, -1):
            image = pyramid[start]
            for k in range(start - 1, -1, -1):
                condition = up(image)
                image = condition + family.generate(k, family.sample_z(k, num, gen), condition)
            out[f"real I_{start}, then G_{start - 1}..G_0"] = image.clamp(-1, 1)
        out["real digits"] = real_a
    for name, samples in out.items():
        print(f"{name}: classifier FID {fid(extract(extractor, samples)[0], reference):.1f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2500)
