"""Iterations per second of GANModule under the Lightning Trainer against a plain PyTorch loop.

Both run the same networks, batch, loss, optimizers and data stream, one D and one G step per
iteration, in one process, in alternating blocks (see ``Paired``). The ratio (ganlab / plain,
the median over blocks) is the framework's cost: 1.0 is free.

    python benchmarks/throughput.py [--blocks N] [--threads T] [--models mlp_toy,dcgan_32]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar

from ganlab.adapter.module import GANModule
from ganlab.data.toy import ToyGrid
from ganlab.families.gan import GAN
from ganlab.losses import NonSaturating
from ganlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from ganlab.nets.mlp import MLPDiscriminator, MLPGenerator


class RandomImages(ToyGrid):
    """Stand-in image data (uniform noise in [-1, 1]) so that the benchmark needs no files."""

    def __init__(self, shape: tuple[int, ...], **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.data_shape = shape

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(index)
        n = self.batch_size * self.world_size
        return torch.rand((n, *self.data_shape), generator=g) * 2 - 1, torch.zeros(n)


def make_setup(name: str, iterations: int) -> tuple[Callable, Callable, object, int]:
    if name == "mlp_toy":
        data = ToyGrid(batch_size=256, d_steps=1, iterations=iterations, seed=0)
        data.setup()
        return (lambda: MLPGenerator(2, (2,), hidden_dim=128, num_layers=3),
                lambda: MLPDiscriminator((2,), hidden_dim=128, num_layers=3), data, 2)
    shape = (3, 32, 32)
    data = RandomImages(shape, batch_size=64, d_steps=1, iterations=iterations, seed=0)
    return (lambda: DCGANGenerator(100, shape, base_width=64),
            lambda: DCGANDiscriminator(shape, base_width=64), data, 100)


def adam(params):
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


class PlainLoop:
    """The hand-written loop: Algorithm 1 of Goodfellow et al. with k = 1."""

    def __init__(self, make_g, make_d, data, latent_dim: int) -> None:
        self.G, self.D, self.loss = make_g(), make_d(), NonSaturating()
        self.opt_g, self.opt_d = adam(self.G.parameters()), adam(self.D.parameters())
        self.z_gen = torch.Generator().manual_seed(0)
        self.data, self.latent_dim, self.it = data, latent_dim, 0

    def run(self, iterations: int) -> float:
        """Seconds for ``iterations`` iterations."""
        G, D, loss, opt_g, opt_d = self.G, self.D, self.loss, self.opt_g, self.opt_d
        start = time.perf_counter()
        for _ in range(iterations):
            real, _ = self.data.sample(self.it)
            self.it += 1
            b = real.shape[0]
            with torch.no_grad():
                fake = G(torch.randn(b, self.latent_dim, generator=self.z_gen))
            d_cost = loss.d_loss(D(real), D(fake))
            opt_d.zero_grad(set_to_none=True)
            d_cost.backward()
            opt_d.step()
            fake = G(torch.randn(b, self.latent_dim, generator=self.z_gen))
            D.requires_grad_(False)
            g_cost = loss.g_loss(D(fake))
            opt_g.zero_grad(set_to_none=True)
            g_cost.backward()
            D.requires_grad_(True)
            opt_g.step()
        return time.perf_counter() - start


class Paired(Callback):
    """Times blocks of ``block`` ganlab iterations and, after each, ``block`` iterations of the
    plain loop, so both are measured under the same machine conditions (this CPU's speed
    drifts by ±20 % over seconds, more than the overhead being measured)."""

    def __init__(self, plain: PlainLoop, block: int) -> None:
        self.plain, self.block = plain, block
        self.ganlab_s: list[float] = []
        self.plain_s: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx % self.block == 0:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if (batch_idx + 1) % self.block == 0:
            self.ganlab_s.append(time.perf_counter() - self.start)
            self.plain_s.append(self.plain.run(self.block))


def measure(name: str, blocks: int, block: int) -> tuple[float, float, float]:
    """(plain it/s, ganlab it/s, median of the per-block ratios)."""
    iterations = blocks * block
    make_g, make_d, data, latent = make_setup(name, iterations)
    plain = PlainLoop(make_g, make_d, data, latent)
    plain.run(max(block // 2, 2))  # warm-up
    torch.manual_seed(0)
    module = GANModule(GAN(make_g(), make_d(), NonSaturating(), adam, adam, latent_dim=latent),
                       log_every_n_iterations=50)
    paired = Paired(plain, block)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=2 * iterations, logger=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0,
                        callbacks=[paired, TQDMProgressBar(refresh_rate=50)])
    trainer.fit(module, datamodule=data)
    g, p = paired.ganlab_s[1:], paired.plain_s[1:]  # the first block includes warm-up
    ratios = sorted(pi / gi for pi, gi in zip(p, g, strict=True))
    return block * len(p) / sum(p), block * len(g) / sum(g), ratios[len(ratios) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=11, help="measured blocks per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="mlp_toy,dcgan_32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    rows = []
    for name in args.models.split(","):
        block = 200 if name == "mlp_toy" else 5
        rows.append((name, *measure(name, args.blocks + 1, block)))
    print(f"\n{'model':<10} {'plain it/s':>11} {'ganlab it/s':>12} {'ratio (median)':>15}")
    for name, p, o, r in rows:
        print(f"{name:<10} {p:>11.1f} {o:>12.1f} {r:>15.3f}")


if __name__ == "__main__":
    main()
