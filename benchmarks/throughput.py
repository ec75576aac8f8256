"""Iterations per second of GANModule under the Lightning Trainer against a plain PyTorch loop.

Both run the same networks, batch, loss, optimizers and data stream, one D and one G step per
iteration, in one process. The ratio (ganlab / plain) is the framework's cost: 1.0 is free.

    python benchmarks/throughput.py [--iterations N] [--repeats R] [--threads T]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar

from ganlab.data.toy import ToyGrid
from ganlab.losses import NonSaturating
from ganlab.module import GANModule
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


def plain_loop(make_g, make_d, data, latent_dim: int, iterations: int) -> float:
    """The hand-written loop: Algorithm 1 of Goodfellow et al. with k = 1."""
    torch.manual_seed(0)
    G, D, loss = make_g(), make_d(), NonSaturating()
    opt_g, opt_d = adam(G.parameters()), adam(D.parameters())
    z_gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for it in range(iterations):
        real, _ = data.sample(it)
        b = real.shape[0]
        with torch.no_grad():
            fake = G(torch.randn(b, latent_dim, generator=z_gen))
        d_cost = loss.d_loss(D(real), D(fake))
        opt_d.zero_grad(set_to_none=True)
        d_cost.backward()
        opt_d.step()
        fake = G(torch.randn(b, latent_dim, generator=z_gen))
        D.requires_grad_(False)
        g_cost = loss.g_loss(D(fake))
        opt_g.zero_grad(set_to_none=True)
        g_cost.backward()
        D.requires_grad_(True)
        opt_g.step()
    return iterations / (time.perf_counter() - start)


class Timer(Callback):
    """Times the training loop only (from the first batch to the end of the last)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


def ganlab_loop(make_g, make_d, data, latent_dim: int, iterations: int) -> float:
    torch.manual_seed(0)
    module = GANModule(make_g(), make_d(), NonSaturating(), adam, adam, latent_dim=latent_dim,
                       log_every_n_iterations=50)
    timer = Timer()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        num_sanity_val_steps=0, limit_val_batches=0,
                        callbacks=[timer, TQDMProgressBar(refresh_rate=50)])
    data.iterations = iterations
    trainer.fit(module, datamodule=data)
    # The first batch is not timed: count iterations - 1.
    return (iterations - 1) / timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=0, help="per measurement (0: auto)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="mlp_toy,dcgan_32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    rows = []
    for name in args.models.split(","):
        iterations = args.iterations or (2000 if name == "mlp_toy" else 30)
        make_g, make_d, data, latent = make_setup(name, iterations)
        plain_loop(make_g, make_d, data, latent, max(iterations // 10, 3))  # warm-up
        plain, ours = [], []
        for _ in range(args.repeats):  # interleaved, best of R
            plain.append(plain_loop(make_g, make_d, data, latent, iterations))
            ours.append(ganlab_loop(make_g, make_d, data, latent, iterations))
        rows.append((name, max(plain), max(ours)))
    print(f"\n{'model':<10} {'plain it/s':>11} {'ganlab it/s':>12} {'ratio':>7}")
    for name, p, o in rows:
        print(f"{name:<10} {p:>11.1f} {o:>12.1f} {o / p:>7.3f}")


if __name__ == "__main__":
    main()
