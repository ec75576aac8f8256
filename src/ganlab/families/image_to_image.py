"""What the image-to-image families share (pix2pix, SRGAN / SRResNet): a generator that maps
held-out input images to outputs, and a discriminator that the regression baselines (pix2pix's
L1-only G, SRResNet) do without."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.family import Family
from ganlab.core.players import OptimizerFactory


class ImageToImage(Family):
    """Players ``generator`` and, unless ``None``, ``discriminator``; :meth:`sample_latent`
    draws held-out inputs (:attr:`inputs`, in [-1, 1]), so the generic image metrics measure
    ``G(x)`` of held-out ``x`` against real images."""

    generator: nn.Module
    discriminator: nn.Module | None
    factories: dict[str, OptimizerFactory]
    inputs: Tensor

    def set_players(self, generator: nn.Module, discriminator: nn.Module | None,
                    optimizers: dict[str, OptimizerFactory], inputs: Tensor) -> None:
        """Keep the players, their optimizer factories (one per player) and the inputs."""
        needed = {"generator"} | ({"discriminator"} if discriminator is not None else set())
        missing = needed - set(optimizers)
        if missing:
            raise GanlabError(f"model={self.name}: no optimizer for {', '.join(sorted(missing))}")
        self.generator, self.discriminator = generator, discriminator
        self.factories = dict(optimizers)
        self.inputs = inputs

    def networks(self) -> dict[str, nn.Module]:
        nets = {"generator": self.generator}
        if self.discriminator is not None:
            nets["discriminator"] = self.discriminator
        return nets

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        out = {}
        if self.discriminator is not None:
            out["discriminator"] = (self.factories["discriminator"], ["discriminator"])
        out["generator"] = (self.factories["generator"], ["generator"])
        return out

    @property
    def evaluated(self) -> nn.Module:
        return self.generator

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` held-out inputs drawn with replacement by ``generator``."""
        idx = torch.randint(len(self.inputs), (n,), generator=generator, device=generator.device)
        return self.inputs[idx.cpu()].to(generator.device)
