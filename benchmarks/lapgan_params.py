"""Parameters of LAPGAN's MNIST preset and of its single-scale baseline, by player and in all.

    python benchmarks/lapgan_params.py [extra overrides for both presets]

Builds each preset's family exactly as ``ganlab-train`` does (its class's ``from_config``), so the
counts are those of the runs in README's LAPGAN table.
"""

from __future__ import annotations

import sys

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_class

from ganlab.app.build import build, build_datamodule
from ganlab.app.cli import config_dir

PRESETS = ("lapgan_mnist_offline", "lapgan_baseline_mnist_offline")


def counts(preset: str, overrides: list[str]) -> dict[str, int]:
    """Parameters of each network of ``preset``'s run and their total."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={preset}", *overrides])
    family = get_class(cfg.model._target_).from_config(cfg, build_datamodule(cfg), build)
    out = {role: sum(p.numel() for p in net.parameters())
           for role, net in family.networks().items()}
    return {**out, "total": sum(out.values())}


def main(argv: list[str]) -> None:
    for preset in PRESETS:
        values = counts(preset, argv)
        print(f"{preset}: " + ", ".join(f"{k} {v:,}" for k, v in values.items()))


if __name__ == "__main__":
    main(sys.argv[1:])
