"""Figures of a run: image grids, 2-D scatter plots, and Figure 1 of Goodfellow et al. (2014)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402


def image_grid(images: Tensor, nrow: int | None = None) -> np.ndarray:
    """A uint8 ``(H, W, 3)`` grid of images in [-1, 1] (W&B saves float images as black)."""
    nrow = nrow or max(int(math.sqrt(images.shape[0])), 1)
    grid = make_grid(images.detach().float().cpu().clamp(-1, 1), nrow=nrow, padding=2,
                     normalize=True, value_range=(-1, 1))
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def figure_to_array(fig: plt.Figure) -> np.ndarray:
    """Render a matplotlib figure to a uint8 ``(H, W, 3)`` array and close it."""
    fig.canvas.draw()
    array = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return array


def scatter_2d(real: Tensor, fake: Tensor, centers: Tensor, title: str = "") -> np.ndarray:
    """Real and generated points with the mode centres marked."""
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    ax.scatter(*real.cpu().T.numpy(), s=2, alpha=0.3, c="tab:blue", label="real")
    ax.scatter(*fake.cpu().T.numpy(), s=2, alpha=0.3, c="tab:green", label="generated")
    ax.scatter(*centers.cpu().T.numpy(), s=40, marker="x", c="black", label="modes")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=3, fontsize=8)
    ax.set_title(title)
    return figure_to_array(fig)


def gaussian_kde(points: Tensor, grid: Tensor, bandwidth: float | None = None) -> Tensor:
    """Density of 1-D ``points`` on ``grid`` by a Gaussian kernel (Silverman's bandwidth)."""
    points = points.double().flatten()
    if bandwidth is None:
        bandwidth = 1.06 * float(points.std()) * points.numel() ** (-1 / 5) + 1e-6
    diffs = (grid.double().flatten()[:, None] - points[None, :]) / bandwidth
    return torch.exp(-0.5 * diffs**2).mean(dim=1) / (bandwidth * math.sqrt(2 * math.pi))


def figure1(
    x: Tensor,
    data_density: Tensor,
    discriminator: Tensor,
    z: Tensor,
    generated: Tensor,
    title: str = "",
) -> np.ndarray:
    """Figure 1 of Goodfellow et al. (2014) on 1-D data.

    Top: data density (black, dotted), D(x) (blue, dashed), generator density (green, solid).
    Bottom: the map x = G(z) drawn as lines from z (lower line) to x (upper line).
    """
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(7, 5), dpi=100, height_ratios=[3, 1], sharex=True
    )
    x_np = x.cpu().numpy().ravel()
    top.plot(x_np, data_density.cpu().numpy().ravel(), "k:", lw=2, label="data density")
    top.plot(x_np, discriminator.cpu().numpy().ravel(), "b--", lw=2, label="D(x)")
    g_density = gaussian_kde(generated.cpu(), x.cpu()).numpy()
    top.plot(x_np, g_density, "g-", lw=2, label="generator density")
    top.axhline(0.5, color="gray", lw=0.5)
    top.legend(loc="upper right", fontsize=8)
    top.set_title(title)
    z_np, g_np = z.cpu().numpy().ravel(), generated.cpu().numpy().ravel()
    lo, hi = float(x_np.min()), float(x_np.max())
    z_scaled = lo + (z_np - z_np.min()) / max(np.ptp(z_np), 1e-9) * (hi - lo)
    for zi, xi in zip(z_scaled[::max(len(z_np) // 40, 1)], g_np[::max(len(z_np) // 40, 1)],
                      strict=True):
        bottom.plot([zi, xi], [0, 1], "k-", lw=0.5, alpha=0.6)
    bottom.set_yticks([0, 1], ["z", "x"])
    bottom.set_xlim(lo, hi)
    return figure_to_array(fig)


def code_scatter(codes: Tensor, labels: Tensor, prior: Tensor, title: str = "") -> np.ndarray:
    """2-D codes of real images coloured by their label (tab10) over samples of the prior
    (light grey): the adversarial autoencoder's figure (Makhzani et al. 2015, Figs. 2, 4, 6)."""
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
    ax.scatter(*prior.detach().cpu().double().T.numpy(), s=2, alpha=0.25, c="lightgray",
               label="prior")
    points = ax.scatter(*codes.detach().cpu().double().T.numpy(), s=3, alpha=0.8,
                        c=labels.cpu().numpy(), cmap="tab10", vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), label="label")
    ax.set_aspect("equal")
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return figure_to_array(fig)
