"""Helpers of the per-trick unit tests: hand-made critics, tolerances, tiny modules."""

from __future__ import annotations

import functools
import io
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.adapter.module import GANModule
from ganlab.families.gan import GAN
from ganlab.losses import NonSaturating
from ganlab.nets.dcgan import DCGANGenerator
from ganlab.nets.mlp import MLPDiscriminator
from ganlab.tricks.base import Trick

LN3 = math.log(3.0)
TOL32 = {"atol": 1e-6, "rtol": 1e-6}
TOL64 = {"atol": 1e-12, "rtol": 1e-12}


class HalfSquare(nn.Module):
    """D(x) = c/2 ||x||^2 per sample: grad_x D = c x, so ||grad||^2 = c^2 ||x||^2."""

    def __init__(self, c: float = 1.0) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * self.c * x.flatten(1).pow(2).sum(1)


def roundtrip(state: dict[str, Any]) -> dict[str, Any]:
    """Through torch.save / torch.load(weights_only=True), as a checkpoint would."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)






NAMES = ["minibatch_discrimination", "virtual_batch_norm", "spectral_norm", "ema", "ttur"]


QUICK = ["train.iterations=4", "metrics.every_n_iterations=0"]


DCGAN_TINY = [
    "experiment=dcgan_mnist_offline",
    "generator.net.base_width=8",
    "discriminator.net.base_width=8",
    "train.batch_size=8",
    "train.iterations=2",
    "metrics.every_n_iterations=0",
]


def make_module(
    generator: nn.Module, latent_dim: int, tricks: list[Trick], data_shape=(2,)
) -> GANModule:
    """A GANModule on ``generator`` and a small MLP discriminator, without Hydra."""
    adam = functools.partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
    return GANModule(
        GAN(
            generator=generator,
            discriminator=MLPDiscriminator(data_shape, hidden_dim=16, num_layers=2),
            loss=NonSaturating(),
            g_optimizer=adam,
            d_optimizer=adam,
            latent_dim=latent_dim,
            plugins=tricks,
        )
    )


def tiny_dcgan_generator(latent_dim: int = 4) -> DCGANGenerator:
    """8x8 one-channel images: ConvT(4->8) + BN + ReLU + ConvT(8->1) + tanh."""
    return DCGANGenerator(latent_dim, (1, 8, 8), base_width=8)


def last_state(run_dir: Path) -> dict[str, Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
