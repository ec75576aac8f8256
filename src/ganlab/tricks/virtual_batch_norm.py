"""Virtual batch normalization in G (Salimans et al. 2016, "Improved Techniques for Training
GANs", §3.5), as implemented in openai/improved-gan (``VBN``/``VBNL``).

A reference batch ``z_ref`` of ``N`` latent vectors is drawn once. At every forward of G, in
training and in evaluation alike, ``z_ref`` goes through the current G together with the inputs,
and every batch-norm layer of G becomes a :class:`VirtualBatchNorm` layer that normalises

* the reference rows with the reference statistics alone:
  ``μ_ref = mean(x_ref)``, ``E_ref[x²] = mean(x_ref²)``;
* each input example ``x_i`` with the reference statistics *and its own*:
  ``μ_i = N/(N+1)·μ_ref + 1/(N+1)·x̄_i``, ``E[x²]_i = N/(N+1)·E_ref[x²] + 1/(N+1)·mean(x_i²)``,
  ``var_i = E[x²]_i − μ_i²``, ``y_i = (x_i − μ_i)/sqrt(var_i + eps)·γ + β``,

per channel; means run over the batch and the spatial positions for the reference and over the
spatial positions of ``x_i`` alone for ``x̄_i`` (``x̄_i = x_i`` for ``(n, C)`` inputs), as in the
improved-gan code. So an example's output does not depend on the other examples of its batch.
Gradients flow through the reference statistics. γ and β are the batch-norm layer's, copied
(improved-gan parameterises γ as ``exp(driver)``; ganlab keeps batch norm's γ). Costs one extra
forward of ``N`` rows per call of G.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.players import Setup
from ganlab.tricks.base import Stage, Trick

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class VirtualBatchNorm(nn.Module):
    """Normalises ``x (N + n, C, ...)`` whose first ``reference_size`` rows are the reference
    batch (see the module docstring); no running statistics."""

    def __init__(
        self, num_features: int, reference_size: int, eps: float = 1e-5, affine: bool = True
    ) -> None:
        super().__init__()
        self.num_features = int(num_features)
        self.reference_size = int(reference_size)
        self.eps = float(eps)
        if affine:
            self.weight: nn.Parameter | None = nn.Parameter(torch.ones(num_features))
            self.bias: nn.Parameter | None = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    @classmethod
    def from_batch_norm(cls, bn: nn.Module, reference_size: int) -> VirtualBatchNorm:
        """A VBN layer with ``bn``'s ``eps`` and a copy of its γ and β."""
        vbn = cls(bn.num_features, reference_size, bn.eps, bn.affine)
        if bn.affine:
            vbn.to(bn.weight.device)
            with torch.no_grad():
                vbn.weight.copy_(bn.weight)
                vbn.bias.copy_(bn.bias)
        return vbn

    def _normalize(self, x: Tensor, mean: Tensor, mean_sq: Tensor) -> Tensor:
        # var >= 0 in exact arithmetic (a mixture's variance); the clamp only absorbs rounding.
        var = (mean_sq - mean.square()).clamp_min(0.0)
        out = (x - mean) / torch.sqrt(var + self.eps)
        if self.weight is not None:
            shape = (1, -1) + (1,) * (x.dim() - 2)
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    def forward(self, x: Tensor) -> Tensor:
        n = self.reference_size
        if x.shape[0] < n:
            raise GanlabError(
                f"VirtualBatchNorm expects the {n} reference rows first; got a batch of "
                f"{x.shape[0]} (call G through its VirtualBatchNormGenerator wrapper)"
            )
        spatial = tuple(range(2, x.dim()))
        ref, live = x[:n], x[n:]
        ref_mean = ref.mean(dim=(0, *spatial), keepdim=True)
        ref_sq = ref.square().mean(dim=(0, *spatial), keepdim=True)
        out_ref = self._normalize(ref, ref_mean, ref_sq)
        if live.shape[0] == 0:
            return out_ref
        live_mean = live.mean(dim=spatial, keepdim=True) if spatial else live
        live_sq = live.square().mean(dim=spatial, keepdim=True) if spatial else live.square()
        new, old = 1.0 / (n + 1), n / (n + 1)
        mean = old * ref_mean + new * live_mean
        mean_sq = old * ref_sq + new * live_sq
        return torch.cat([out_ref, self._normalize(live, mean, mean_sq)])

    def extra_repr(self) -> str:
        return (f"{self.num_features}, reference_size={self.reference_size}, eps={self.eps}, "
                f"affine={self.weight is not None}")


class VirtualBatchNormGenerator(nn.Module):
    """``forward(z) = G(cat(z_ref, z))[N:]``; ``reference_z`` is a buffer (in the checkpoint's
    ``state_dict``, moved with the module)."""

    def __init__(self, generator: nn.Module, reference_z: Tensor) -> None:
        super().__init__()
        self.net = generator
        self.register_buffer("reference_z", reference_z.detach().clone())
        for attr in ("latent_dim", "data_shape"):
            if hasattr(generator, attr):
                setattr(self, attr, getattr(generator, attr))

    def forward(self, z: Tensor) -> Tensor:
        ref = self.reference_z.to(device=z.device, dtype=z.dtype)
        return self.net(torch.cat([ref, z]))[ref.shape[0]:]


class VirtualBatchNormTrick(Trick):
    """Turns every batch-norm layer of G into :class:`VirtualBatchNorm` and wraps G in
    :class:`VirtualBatchNormGenerator` with a reference batch drawn once from p_z.

    Args:
        reference_size: ``N``, the size of the reference batch.
        seed: seeds the draw of the reference batch.
    """

    name = "virtual_batch_norm"
    stage = Stage.NETWORK
    needs = frozenset({"generator.batch_norm"})

    def __init__(self, reference_size: int = 64, seed: int = 0) -> None:
        if reference_size < 1:
            raise GanlabError(f"virtual_batch_norm: reference_size must be ≥ 1; got "
                              f"{reference_size}")
        self.reference_size = int(reference_size)
        self.seed = int(seed)
        self._wrapper: VirtualBatchNormGenerator | None = None

    def setup(self, setup: Setup) -> None:
        g = setup.players.generator
        layers = [(name, m) for name, m in g.named_modules() if isinstance(m, _BATCH_NORMS)]
        if not layers:
            raise GanlabError("virtual_batch_norm needs a generator with batch norm layers")
        for name, bn in layers:
            parent, _, child = name.rpartition(".")
            setattr(g.get_submodule(parent), child,
                    VirtualBatchNorm.from_batch_norm(bn, self.reference_size))
        gen = torch.Generator().manual_seed(self.seed)
        z_ref = setup.sample_latent(self.reference_size, gen)
        first = next(g.parameters(), None)
        self._wrapper = VirtualBatchNormGenerator(g, z_ref)
        if first is not None:
            self._wrapper.to(first.device)
        setup.players.generator = self._wrapper

    @property
    def reference_z(self) -> Tensor:
        """The reference batch ``z_ref`` (on the module's device)."""
        if self._wrapper is None:
            raise GanlabError("virtual_batch_norm: setup() has not run")
        return self._wrapper.reference_z

    def state_dict(self) -> dict[str, Any]:
        return {"reference_z": self.reference_z.detach().cpu().clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "reference_z" not in state:
            return
        z = state["reference_z"]
        if tuple(z.shape) != tuple(self.reference_z.shape):
            raise GanlabError(
                f"virtual_batch_norm: the checkpoint's reference batch has shape "
                f"{tuple(z.shape)}, this run's {tuple(self.reference_z.shape)} "
                "(reference_size or latent_dim differ)"
            )
        with torch.no_grad():
            self.reference_z.copy_(z)
