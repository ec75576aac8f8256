"""The default experiment as a bare PyTorch script, for ``throughput.py --whole-process``: the
same networks (ganlab's MLPs, 3×128), non-saturating loss, batch 256, Adam (lr 1e-3, β 0.5,
0.999), 25-Gaussian grid data drawn as ``ganlab.data.toy.ToyGrid`` draws it, and the same final
evaluation (modes covered, high-quality share and reverse KL of 2,500 samples, 3σ) — without
Lightning, Hydra, W&B, checkpoints or pictures.

    python benchmarks/plain_default.py ITERATIONS
"""

from __future__ import annotations

import sys

import torch

from ganlab.losses import NonSaturating
from ganlab.nets.mlp import MLPDiscriminator, MLPGenerator

AXIS = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
CENTERS = torch.cartesian_prod(AXIS, AXIS)
STD = 0.05


def generator_for(seed: int, index: int) -> torch.Generator:
    """``ganlab.data.stream.generator_for`` (that package imports Lightning)."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index * 7_919 + 12_345) % (2**63 - 1))


def draw(n: int, generator: torch.Generator) -> torch.Tensor:
    y = torch.randint(len(CENTERS), (n,), generator=generator, dtype=torch.int64)
    return CENTERS[y] + STD * torch.randn(n, 2, generator=generator)


def iteration(G: torch.nn.Module, D: torch.nn.Module, loss: NonSaturating,
              opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, real: torch.Tensor,
              z_gen: torch.Generator, latent_dim: int) -> None:
    """One iteration of Algorithm 1 (Goodfellow et al. 2014) with k = 1, by hand."""
    b, device = real.shape[0], real.device
    with torch.no_grad():
        fake = G(torch.randn(b, latent_dim, generator=z_gen, device=device))
    d_cost = loss.d_loss(D(real), D(fake))
    opt_d.zero_grad(set_to_none=True)
    d_cost.backward()
    opt_d.step()
    fake = G(torch.randn(b, latent_dim, generator=z_gen, device=device))
    D.requires_grad_(False)
    g_cost = loss.g_loss(D(fake))
    opt_g.zero_grad(set_to_none=True)
    g_cost.backward()
    D.requires_grad_(True)
    opt_g.step()


def main(iterations: int) -> None:
    torch.manual_seed(0)
    G = MLPGenerator(2, (2,), hidden_dim=128, num_layers=3, output="linear")
    D = MLPDiscriminator((2,), hidden_dim=128, num_layers=3, activation="leaky_relu")
    loss = NonSaturating()
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    z_gen = torch.Generator().manual_seed(1_000_003)
    for it in range(iterations):
        iteration(G, D, loss, opt_g, opt_d, draw(256, generator_for(0, it)), z_gen, 2)
    with torch.no_grad():
        samples = G(torch.randn(2500, 2, generator=torch.Generator().manual_seed(0)))
    dist, nearest = torch.cdist(samples, CENTERS).min(dim=1)
    hq = dist <= 3 * STD
    counts = torch.bincount(nearest[hq], minlength=len(CENTERS)).double()
    q = counts[counts > 0] / max(int(hq.sum()), 1)
    print(f"modes {int((counts > 0).sum())} hq {float(hq.double().mean()):.3f} "
          f"reverse_kl {float((q * torch.log(q * len(CENTERS))).sum()):.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]))
