"""Pictures of the generator during training, saved under ``<output_dir>/samples/`` and logged.

Image data: a grid of G(z) for a fixed z. 2-D data: real vs generated points with the mode
centres. 1-D data: Figure 1 of Goodfellow et al. (2014).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from PIL import Image

from ganlab import plots
from ganlab.adapter.callbacks import due
from ganlab.adapter.module import GANModule
from ganlab.core.atomic import atomic_path
from ganlab.core.eval_mode import evaluating
from ganlab.core.seeds import SAMPLE_SEED


class SamplesCallback(L.Callback):
    """Draws the picture that fits the data every ``every_n_iterations`` and at the end."""

    def __init__(self, output_dir: str, every_n_iterations: int = 1000, num_images: int = 64,
                 num_points: int = 2500) -> None:
        self.output_dir = Path(output_dir) / "samples"
        self.every_n_iterations = every_n_iterations
        self.num_images = num_images
        self.num_points = num_points

    @torch.no_grad()
    def picture(self, module: GANModule, datamodule) -> tuple[str, np.ndarray]:
        """``(name, uint8 image)`` of the current generator."""
        shape = tuple(datamodule.data_shape)
        title = f"iteration {module.iteration}"
        if len(shape) == 3:
            images = module.generate(self.num_images, seed=SAMPLE_SEED)
            return "samples", plots.image_grid(images)
        if shape == (2,):
            fake = module.generate(self.num_points, seed=SAMPLE_SEED)
            real = datamodule.sample_n(self.num_points, seed=SAMPLE_SEED)
            return "scatter", plots.scatter_2d(real, fake, datamodule.mode_centers, title)
        if shape == (1,):
            return "figure1", self.figure1(module, datamodule, title)
        return "", np.zeros((0,))

    def figure1(self, module: GANModule, datamodule, title: str) -> np.ndarray:
        real = datamodule.sample_n(self.num_points, seed=SAMPLE_SEED)
        lo, hi = float(real.min()) - 1.0, float(real.max()) + 1.0
        x = torch.linspace(lo, hi, 400).unsqueeze(1)
        gen = torch.Generator(device=module.device).manual_seed(SAMPLE_SEED)
        z = module.sample_z(self.num_points, gen)
        x_in = x.to(module.device)
        # A conditional D judges x with the condition of real data at x (label: nearest mode).
        labels = torch.cdist(x, datamodule.mode_centers.float()).argmin(1).to(module.device)
        with evaluating(module.discriminator, module.eval_generator):
            d = torch.sigmoid(module.family.judge(x_in, labels)).cpu()
            fake = module.eval_generator(z).cpu()
        order = torch.argsort(z[:, 0].cpu())
        return plots.figure1(x, datamodule.density(x), d, z[order, 0].cpu(), fake[order, 0], title)

    def _draw(self, trainer: L.Trainer, module: GANModule) -> None:
        if trainer.global_rank != 0:
            return
        name, image = self.picture(module, trainer.datamodule)
        pictures = {name: image} if name else {}
        # The family's grids: one row per class, InfoGAN's codes, reconstructions, ...; a family
        # may also draw a finished picture (a uint8 array).
        extras = module.family.pictures(module, trainer.datamodule)
        for extra, picture in extras.items():
            if isinstance(picture, np.ndarray):
                pictures[extra] = picture
            else:
                images, nrow = picture
                pictures[extra] = plots.image_grid(images, nrow=nrow)
        for key, picture in pictures.items():
            self._save(trainer, module, key, picture)

    def _save(self, trainer: L.Trainer, module: GANModule, name: str, image: np.ndarray) -> None:
        """``samples/<name>_<iteration>.png`` and, for W&B, ``samples/<name>`` as uint8."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.output_dir / f"{name}_{module.iteration:07d}.png") as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=f"samples/{name}", images=[image], step=module.iteration)

    def cadences(self) -> tuple[int, ...]:
        """The iterations it acts at are multiples of these (GANModule ends batches there)."""
        return (self.every_n_iterations,)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if due(trainer, pl_module, self.every_n_iterations):
            self._draw(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._draw(trainer, pl_module)
