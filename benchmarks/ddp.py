"""Iterations per second of the two data-parallel strategies, 2 CPU processes over gloo.

``ddp`` (Lightning's ``ddp_find_unused_parameters_true``: one DDP around the GANModule) against
``ddp_split`` (:class:`ganlab.adapter.strategies.SplitDDPStrategy`: G and D in a DDP each).

End to end (the default): real ``ganlab-train`` runs, each with a timer callback (defined here)
that counts the iterations after a warm-up, with one process and the same global batch for
reference; the variants alternate, ``--repeats`` times, and the median is printed.

Paired (``--paired``): two processes run both wrappings of the same networks in alternating
blocks of iterations (one D and one G step each, the reducers driven as the two strategies
drive them), so both are timed under the same machine load; prints the median ratio. On a
shared CPU whose speed drifts, only the paired ratio is a fair comparison.

    python benchmarks/ddp.py [--models mlp_toy,dcgan_mnist] [--repeats 3] [--iterations N]
    python benchmarks/ddp.py --paired [--blocks 12] [--models mlp_toy,dcgan_mnist]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent

#: model -> (ganlab-train overrides, global batch, default iterations)
MODELS = {
    "mlp_toy": (["data=toy_grid", "generator=mlp", "discriminator=mlp"], 256, 600),
    "dcgan_mnist": (["experiment=dcgan_mnist_offline"], 64, 150),
}
VARIANTS = {
    "1 process": [],
    "ddp (find_unused_parameters)": ["trainer=ddp"],
    "ddp_split (G, D apart)": ["trainer=ddp_split"],
}


class IterationTimer(L.Callback):
    """Writes ``{"iterations": n, "seconds": s}`` for the iterations after ``warmup`` (rank 0)."""

    def __init__(self, path: str, warmup: int = 20) -> None:
        self.path, self.warmup, self.start = Path(path), warmup, 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.iteration == self.warmup:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_rank == 0:
            seconds = time.perf_counter() - self.start
            self.path.write_text(json.dumps(
                {"iterations": pl_module.iteration - self.warmup, "seconds": seconds}))


def one_run(model: str, variant: str, iterations: int, out: Path) -> float:
    """Iterations per second of one ``ganlab-train`` run."""
    overrides, batch, _ = MODELS[model]
    processes = 1 if not VARIANTS[variant] else 2
    timing = out / "timing.json"
    args = [*overrides, *VARIANTS[variant], "trainer.accelerator=cpu", "logger=none",
            f"train.iterations={iterations}", f"train.batch_size={batch // processes}",
            "metrics.every_n_iterations=0", "metrics.num_samples=100",
            "callbacks.checkpoint.every_n_iterations=0", "~callbacks.samples",
            "~callbacks.progress_bar", "trainer.enable_progress_bar=false",
            "+callbacks.timer._target_=ddp.IterationTimer", f"+callbacks.timer.path={timing}",
            f"hydra.run.dir={out}"]
    if processes > 1:
        args.append(f"trainer.devices={processes}")
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    result = subprocess.run([str(BIN / "ganlab-train"), *args], env=env, capture_output=True,
                            text=True, timeout=900)
    if result.returncode != 0:
        sys.exit(f"{model} / {variant} failed:\n{result.stderr[-3000:]}")
    measured = json.loads(timing.read_text())
    return measured["iterations"] / measured["seconds"]


def paired_nets(model: str) -> tuple[Any, Any, tuple[int, ...], int, int]:
    """(G, D, data shape, latent size, per-process batch) as the ganlab configs build them."""
    from ganlab.nets.dcgan import DCGANDiscriminator, DCGANGenerator
    from ganlab.nets.mlp import MLPDiscriminator, MLPGenerator

    torch.manual_seed(0)
    if model == "mlp_toy":  # conf/generator/mlp.yaml, conf/discriminator/mlp.yaml
        return (MLPGenerator(2, (2,), hidden_dim=128, num_layers=3),
                MLPDiscriminator((2,), hidden_dim=128, num_layers=3), (2,), 2, 128)
    shape = (1, 28, 28)  # experiment=dcgan_mnist_offline
    return (DCGANGenerator(64, shape, base_width=32), DCGANDiscriminator(shape, base_width=32),
            shape, 64, 32)


def paired_worker(rank: int, model: str, blocks: int, block: int, port: int, queue: Any) -> None:
    import torch.distributed as dist
    from lightning.pytorch.overrides.distributed import prepare_for_backward
    from torch.nn.parallel import DistributedDataParallel as DDP

    from ganlab.losses import NonSaturating

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    G, D, shape, latent, batch = paired_nets(model)
    loss = NonSaturating()
    whole = DDP(torch.nn.ModuleDict({"G": G, "D": D}), find_unused_parameters=True)
    apart = {"G": DDP(G), "D": DDP(D)}
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(rank)

    def iteration(split: bool) -> None:
        for ddp in ([*apart.values()] if split else [whole]):  # as in a DDP forward
            if ddp.will_sync_module_buffers():
                ddp._sync_buffers()
        real = torch.rand((batch, *shape), generator=gen) * 2 - 1
        with torch.no_grad():
            fake = G(torch.randn(batch, latent, generator=gen))
        d_cost = loss.d_loss(D(real), D(fake))
        opt_d.zero_grad(set_to_none=True)
        prepare_for_backward(apart["D"] if split else whole, d_cost)
        d_cost.backward()
        opt_d.step()
        fake = G(torch.randn(batch, latent, generator=gen))
        D.requires_grad_(False)
        g_cost = loss.g_loss(D(fake))
        opt_g.zero_grad(set_to_none=True)
        prepare_for_backward(apart["G"] if split else whole, g_cost)
        g_cost.backward()
        D.requires_grad_(True)
        opt_g.step()

    seconds: dict[bool, list[float]] = {False: [], True: []}
    for b in range(blocks + 1):
        for split in ((False, True) if b % 2 else (True, False)):
            dist.barrier()
            start = time.perf_counter()
            for _ in range(block):
                iteration(split)
            if b:  # block 0 warms up
                seconds[split].append(time.perf_counter() - start)
    if rank == 0:
        queue.put(seconds)
    dist.destroy_process_group()


def paired(models: list[str], blocks: int) -> None:
    import torch.multiprocessing as mp
    from lightning.fabric.plugins.environments.lightning import find_free_network_port

    for model in models:
        block = 100 if model == "mlp_toy" else 10
        ctx = mp.get_context("spawn")
        queue, port = ctx.Queue(), find_free_network_port()
        procs = [ctx.Process(target=paired_worker, args=(r, model, blocks, block, port, queue))
                 for r in range(2)]
        for p in procs:
            p.start()
        seconds = queue.get(timeout=1800)
        for p in procs:
            p.join()
        whole, apart = seconds[False], seconds[True]
        ratios = sorted(w / a for w, a in zip(whole, apart, strict=True))
        print(f"\n{model}: 2 processes, {blocks} paired blocks of {block} iterations")
        print(f"  ddp (find_unused_parameters) {block * len(whole) / sum(whole):7.1f} it/s")
        print(f"  ddp_split (G, D apart)       {block * len(apart) / sum(apart):7.1f} it/s")
        print(f"  speed-up of ddp_split, median over blocks: {ratios[len(ratios) // 2]:.3f} "
              f"(range {ratios[0]:.3f}-{ratios[-1]:.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=0, help="0: the model's default")
    parser.add_argument("--paired", action="store_true")
    parser.add_argument("--blocks", type=int, default=12, help="paired blocks per wrapping")
    args = parser.parse_args()
    if args.paired:
        paired(args.models.split(","), args.blocks)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            iterations = args.iterations or MODELS[model][2]
            rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
            for repeat in range(args.repeats):
                for i, variant in enumerate(VARIANTS):
                    out = Path(tmp) / f"{model}_{repeat}_{i}"
                    rates[variant].append(one_run(model, variant, iterations, out))
            _, batch, _ = MODELS[model]
            print(f"\n{model}: global batch {batch}, {iterations} iterations "
                  f"(20 warm-up), median of {args.repeats} alternating runs")
            for variant, values in rates.items():
                runs = ", ".join(f"{v:.1f}" for v in values)
                print(f"  {variant:30s} {statistics.median(values):7.1f} it/s   ({runs})")


if __name__ == "__main__":
    main()
