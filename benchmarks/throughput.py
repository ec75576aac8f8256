"""ganlab's cost against hand-written PyTorch: iterations per second of a real ganlab run and of
a plain loop doing the same work, and the wall time of whole processes.

The ganlab side is a run as ``ganlab-train`` builds it (``build_module``/``build_trainer`` from
the Hydra config): the default callbacks (checkpoint cadence, evaluation and picture cadence,
iteration progress bar, signal handling), logging every 50 iterations to a CSV logger, the
divergence guard, and ``tricks=[ema]``. The plain loop trains deep copies of the same networks
(and the same EMA update) with the same loss, batch, Adam settings and data stream. Both run in
one process in alternating blocks (this CPU's speed drifts by ±20 % over seconds); the ratio is
the median over blocks of ganlab it/s / plain it/s (1.0: free).

``--whole-process N``: ``ganlab-train`` (the default experiment, W&B offline) for N iterations
against ``benchmarks/plain_default.py`` (the same nets, loss, batch, Adam, data and final
mode-coverage evaluation in a bare script), alternating, median of 3 each.

    python benchmarks/throughput.py [--blocks N] [--threads T] [--models mlp_toy,dcgan_32]
        [--device cpu|cuda] [--whole-process 10000]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback
from omegaconf import open_dict
from plain_default import iteration

from ganlab.app.build import build_datamodule, build_module, build_trainer
from ganlab.app.cli import config_dir
from ganlab.data.toy import ToyGrid
from ganlab.losses import NonSaturating

HERE = Path(__file__).resolve().parent


class RandomImages(ToyGrid):
    """Stand-in image data (uniform noise in [-1, 1]) so that the benchmark needs no files."""

    def __init__(self, shape: tuple[int, ...], **kwargs: int) -> None:
        super().__init__(**kwargs)
        self.data_shape = shape
        self.mode_centers = None  # no modes to count

    def sample(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(index)
        n = self.batch_size * self.world_size
        return torch.rand((n, *self.data_shape), generator=g) * 2 - 1, torch.zeros(n)


MODELS = {
    # name: (overrides, image shape or None, measured block in iterations)
    "mlp_toy": ([], None, 200),
    "dcgan_32": (["generator=dcgan", "discriminator=dcgan", "optim=adam", "train.batch_size=64",
                  "generator.latent_dim=100"], (3, 32, 32), 10),
    "dcgan_64": (["generator=dcgan", "discriminator=dcgan", "optim=adam", "train.batch_size=64",
                  "generator.latent_dim=100"], (3, 64, 64), 10),
}


def run_config(name: str, iterations: int, device: str, out: Path):
    overrides, shape, _ = MODELS[name]
    with initialize_config_dir(config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[
            *overrides, "tricks=[ema]", "logger=csv", f"train.iterations={iterations}",
            f"trainer.accelerator={device}", "trainer.devices=1", "metrics.every_n_iterations=0",
            f"paths.output_dir={out}", "hydra.job.chdir=false"])
    with open_dict(cfg):
        cfg.hydra = None
    return cfg, shape


class PlainLoop:
    """The hand-written loop: Algorithm 1 of Goodfellow et al. with k = 1, then the EMA of G."""

    def __init__(self, generator, discriminator, ema, optim_cfg, data, latent_dim: int,
                 device: str, decay: float) -> None:
        self.G, self.D, self.ema = generator, discriminator, ema
        self.loss = NonSaturating()
        g, d = optim_cfg.generator, optim_cfg.discriminator
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=g.lr, betas=tuple(g.betas))
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=d.lr, betas=tuple(d.betas))
        self.z_gen = torch.Generator(device=device).manual_seed(0)
        self.data, self.latent_dim, self.device, self.decay, self.it = (
            data, latent_dim, device, decay, 0)
        self.pairs = list(zip(self.ema.parameters(), self.G.parameters(), strict=True))

    def run(self, iterations: int) -> float:
        """Seconds for ``iterations`` iterations."""
        G, D, loss, opt_g, opt_d, dev = (self.G, self.D, self.loss, self.opt_g, self.opt_d,
                                         self.device)
        start = time.perf_counter()
        for _ in range(iterations):
            real, _ = self.data.sample(self.it)
            real = real.to(dev, non_blocking=True)
            self.it += 1
            iteration(G, D, loss, opt_g, opt_d, real, self.z_gen, self.latent_dim)
            with torch.no_grad():
                for e, p in self.pairs:
                    e.mul_(self.decay).add_(p, alpha=1.0 - self.decay)
        if dev != "cpu":
            torch.cuda.synchronize()
        return time.perf_counter() - start


class Paired(Callback):
    """Times blocks of ``block`` ganlab iterations and, after each, ``block`` iterations of the
    plain loop, so both are measured under the same machine conditions."""

    def __init__(self, plain: PlainLoop, block: int) -> None:
        self.plain, self.block = plain, block
        self.ganlab_s: list[float] = []
        self.plain_s: list[float] = []
        self.start = 0.0

    def cadences(self) -> tuple[int, ...]:
        """Its blocks end where Lightning batches end."""
        return (self.block,)

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration % self.block == 0:
            if pl_module.device.type != "cpu":
                torch.cuda.synchronize()
            self.ganlab_s.append(time.perf_counter() - self.start)
            self.plain_s.append(self.plain.run(self.block))
            self.start = time.perf_counter()


def measure(name: str, blocks: int, device: str) -> tuple[float, float, float]:
    """(plain it/s, ganlab it/s, median of the per-block ratios)."""
    block = MODELS[name][2]
    iterations = (blocks + 1) * block
    with tempfile.TemporaryDirectory() as tmp:
        cfg, shape = run_config(name, iterations, device, Path(tmp))
        L.seed_everything(0, verbose=False)
        if shape is None:
            data = build_datamodule(cfg)
        else:
            data = RandomImages(shape, batch_size=64, d_steps=1, iterations=iterations, seed=0)
        data.setup()
        module = build_module(cfg, data)
        nets = {k: copy.deepcopy(v).to(device) for k, v in module.family.networks().items()}
        plain = PlainLoop(nets["generator"], nets["discriminator"], nets["generator_ema"],
                          cfg.optim, data, int(cfg.generator.latent_dim), device,
                          float(cfg.tricks.ema.decay))
        plain.run(max(block // 2, 2))  # warm-up
        trainer = build_trainer(cfg, module)
        paired = Paired(plain, block)
        trainer.callbacks.append(paired)
        trainer.fit(module, datamodule=data)
    g, p = paired.ganlab_s[1:], paired.plain_s[1:]  # the first block includes warm-up
    ratios = sorted(pi / gi for pi, gi in zip(p, g, strict=True))
    return block * len(p) / sum(p), block * len(g) / sum(g), ratios[len(ratios) // 2]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def one_iteration(repeats: int = 3) -> float:
    """Median wall seconds of a one-iteration default run (start-up, one evaluation, exit)."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    with tempfile.TemporaryDirectory() as tmp:
        return statistics.median(
            timed([sys.executable, "-m", "ganlab.app.train", "train.iterations=1",
                   f"hydra.run.dir={tmp}/run{i}"], Path(tmp), env) for i in range(repeats))


def whole_process(iterations: int, repeats: int = 3) -> tuple[float, float]:
    """Median wall seconds of ``ganlab-train`` and of the plain script, alternating."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):  # ganlab-train is `python -m ganlab.app.train`
            ours.append(timed([sys.executable, "-m", "ganlab.app.train",
                               f"train.iterations={iterations}", f"hydra.run.dir={tmp}/run{i}"],
                              Path(tmp), env))
            theirs.append(timed([sys.executable, str(HERE / "plain_default.py"),
                                 str(iterations)], Path(tmp), env))
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=11, help="measured blocks per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default="mlp_toy,dcgan_32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--whole-process", type=int, default=0, metavar="ITERATIONS",
                        help="also time whole processes of this many iterations (0: no)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    rows = [(name, *measure(name, args.blocks, args.device)) for name in args.models.split(",")]
    whole = whole_process(args.whole_process) if args.whole_process else None
    print(f"\n{'model':<10} {'device':<7} {'plain it/s':>11} {'ganlab it/s':>12} "
          f"{'ratio (median)':>15}  whole process (ganlab-train / plain script)")
    for name, p, o, r in rows:
        cell = "" if whole is None or name != "mlp_toy" else (
            f"{whole[0]:.1f} s / {whole[1]:.1f} s = {whole[0] / whole[1]:.2f} "
            f"({args.whole_process} iterations, default experiment, median of 3)")
        print(f"{name:<10} {args.device:<7} {p:>11.1f} {o:>12.1f} {r:>15.3f}  {cell}")
    if whole is not None:
        print(f"\none-iteration default run: {one_iteration():.1f} s (median of 3)")


if __name__ == "__main__":
    main()
