"""DiffAugment (Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient
GAN Training", §3 and the reference ``DiffAugment_pytorch.py`` of mit-han-lab/data-efficient-gans).

The same random, differentiable transformation family T is applied to every input of D, real
and fake, in the D step (``D(T(x))``, ``D(T(G(z)))``) and in the G step (``D(T(G(z)))``, gradient
through T to G), each call with fresh parameters drawn per image. The operations and their
distributions are the reference implementation's, line for line:

- ``color``: brightness ``x + (u - 0.5)``; saturation ``(x - mean_c x) * 2u + mean_c x`` (mean over
  channels; the identity for one channel); contrast ``(x - mean x) * (u + 0.5) + mean x`` (mean
  over the image); ``u ~ U[0, 1)`` per image, in this order.
- ``translation``: an integer shift in ``[-r, r]`` pixels per axis and image, ``r = int(side *
  ratio + 0.5)`` (ratio 1/8), filling with 0.
- ``cutout``: a zeroed square of side ``int(side * ratio + 0.5)`` (ratio 1/2) centred at a
  uniform position (clipped at the border).

kornia's nearest operations differ (its colour adjustments clip to [0, 1], its translation
resamples, its erasing draws a random size and aspect), so the reference is followed instead.
Random numbers come from the trick's own CPU ``torch.Generator`` (moved to the data's device
afterwards, so a run draws the same augmentations on any device); its state is checkpointed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.tricks.base import Trick

if TYPE_CHECKING:
    from ganlab.adapter.module import GANModule


def brightness(x: Tensor, u: Tensor) -> Tensor:
    """``x + (u - 0.5)``, ``u (B,)``."""
    return x + (u.view(-1, 1, 1, 1) - 0.5)


def saturation(x: Tensor, u: Tensor) -> Tensor:
    """``(x - m) * 2u + m`` with ``m`` the per-pixel mean over channels, ``u (B,)``."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (u.view(-1, 1, 1, 1) * 2) + mean


def contrast(x: Tensor, u: Tensor) -> Tensor:
    """``(x - m) * (u + 0.5) + m`` with ``m`` the mean of each image, ``u (B,)``."""
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (u.view(-1, 1, 1, 1) + 0.5) + mean


def translate(x: Tensor, tx: Tensor, ty: Tensor) -> Tensor:
    """Image ``b`` shifted so that ``out[b, :, i, j] = x[b, :, i + tx_b, j + ty_b]`` (0 outside),
    ``tx, ty (B,)`` integers (the reference's gather on a 1-pixel zero padding)."""
    b, _, h, w = x.shape
    grid_b, grid_x, grid_y = torch.meshgrid(
        torch.arange(b, device=x.device), torch.arange(h, device=x.device),
        torch.arange(w, device=x.device), indexing="ij")
    grid_x = torch.clamp(grid_x + tx.view(-1, 1, 1) + 1, 0, h + 1)
    grid_y = torch.clamp(grid_y + ty.view(-1, 1, 1) + 1, 0, w + 1)
    x_pad = torch.nn.functional.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    return x_pad.permute(0, 2, 3, 1).contiguous()[grid_b, grid_x, grid_y].permute(0, 3, 1, 2)


def cut_out(x: Tensor, ox: Tensor, oy: Tensor, size: tuple[int, int]) -> Tensor:
    """``x`` with the square ``[ox - size_h // 2, ox - size_h // 2 + size_h) x [oy - ...)`` of each
    image set to 0 (clipped at the border), ``ox, oy (B,)`` integers."""
    b, _, h, w = x.shape
    grid_b, grid_x, grid_y = torch.meshgrid(
        torch.arange(b, device=x.device), torch.arange(size[0], device=x.device),
        torch.arange(size[1], device=x.device), indexing="ij")
    grid_x = torch.clamp(grid_x + ox.view(-1, 1, 1) - size[0] // 2, min=0, max=h - 1)
    grid_y = torch.clamp(grid_y + oy.view(-1, 1, 1) - size[1] // 2, min=0, max=w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[grid_b, grid_x, grid_y] = 0
    return x * mask.unsqueeze(1)


class DiffAugment(Trick):
    """Differentiable augmentation of every input of D (Zhao et al. 2020).

    Args:
        policy: operations, applied in this order (a list, or a comma-separated string as
            the reference's): ``color``, ``translation``, ``cutout`` (the paper's choice for
            CIFAR-10 and few-shot data: all three).
        translation_ratio: the largest shift as a fraction of the side (reference: 1/8).
        cutout_ratio: the cut square's side as a fraction of the image side (reference: 1/2).
        seed: seed of the trick's random-number generator; ``None``: the run's ``seed``.
    """

    name = "diffaugment"
    OPERATIONS = ("color", "translation", "cutout")

    def __init__(
        self,
        policy: str | Sequence[str] = ("color", "translation", "cutout"),
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        seed: int | None = None,
    ) -> None:
        names = policy.split(",") if isinstance(policy, str) else [str(p) for p in policy]
        ops = [p.strip() for p in names if p.strip()]
        bad = [p for p in ops if p not in self.OPERATIONS]
        if bad or not ops or len(set(ops)) != len(ops):
            raise GanlabError(
                f"diffaugment: policy {list(names)} must list distinct operations among "
                f"{', '.join(self.OPERATIONS)}"
            )
        for key, value in (("translation_ratio", translation_ratio),
                           ("cutout_ratio", cutout_ratio)):
            if not 0 <= value <= 1:
                raise GanlabError(f"diffaugment: {key} must be in [0, 1]; got {value}")
        self.policy = ops
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)
        self.generator = torch.Generator()
        self.seed = 0
        self._seed_from_run = seed is None
        self.reseed(0 if seed is None else int(seed))
        self._ops: dict[str, Callable[[Tensor], Tensor]] = {
            "color": self._color, "translation": self._translation, "cutout": self._cutout}

    def reseed(self, seed: int) -> None:
        """Restart the random-number generator from ``seed``."""
        self.seed = int(seed)
        self.generator.manual_seed(self.seed)

    def setup(self, module: GANModule) -> None:
        shape = getattr(module.discriminator, "data_shape", None)
        if shape is not None and len(shape) != 3:
            raise GanlabError(
                f"diffaugment needs image data (C, H, W); the discriminator takes {tuple(shape)}"
            )
        if self._seed_from_run:
            self.reseed(int(module.seed))

    def _uniform(self, x: Tensor) -> Tensor:
        return torch.rand(x.shape[0], generator=self.generator, dtype=x.dtype).to(x.device)

    def _integers(self, low: int, high: int, x: Tensor) -> Tensor:
        """``B`` integers uniform in ``[low, high)``."""
        return torch.randint(low, high, (x.shape[0],), generator=self.generator).to(x.device)

    def _color(self, x: Tensor) -> Tensor:
        x = brightness(x, self._uniform(x))
        x = saturation(x, self._uniform(x))
        return contrast(x, self._uniform(x))

    def _translation(self, x: Tensor) -> Tensor:
        sx = int(x.shape[2] * self.translation_ratio + 0.5)
        sy = int(x.shape[3] * self.translation_ratio + 0.5)
        tx = self._integers(-sx, sx + 1, x)
        ty = self._integers(-sy, sy + 1, x)
        return translate(x, tx, ty)

    def _cutout(self, x: Tensor) -> Tensor:
        ratio = self.cutout_ratio
        size = (int(x.shape[2] * ratio + 0.5), int(x.shape[3] * ratio + 0.5))
        ox = self._integers(0, x.shape[2] + (1 - size[0] % 2), x)
        oy = self._integers(0, x.shape[3] + (1 - size[1] % 2), x)
        return cut_out(x, ox, oy, size)

    def d_input(self, x: Tensor, iteration: int) -> Tensor:
        if x.dim() != 4:
            raise GanlabError(
                f"diffaugment needs image inputs (B, C, H, W); D receives shape {tuple(x.shape)}"
            )
        for op in self.policy:
            x = self._ops[op](x)
        return x

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.generator.set_state(state["state"].to("cpu"))
