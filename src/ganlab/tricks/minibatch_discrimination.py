"""Minibatch discrimination (Salimans et al. 2016, "Improved Techniques for Training GANs", §3.2).

From D's features ``f(x_i) ∈ R^A`` and a learned tensor ``T ∈ R^{A×B×C}``:

    M_i = f(x_i) T ∈ R^{B×C}
    c_b(x_i, x_j) = exp(-‖M_{i,b} - M_{j,b}‖_1)
    o(x_i)_b = Σ_{j=1}^{n} c_b(x_i, x_j)

and ``cat(f(x_i), o(x_i))`` feeds the next (here: the last) layer of D. The paper's formula sums
over every ``j`` of the minibatch, ``j = i`` included (that term is ``exp(0) = 1``);
``exclude_self=True`` drops it, as openai/improved-gan's ``MinibatchLayer`` does (it adds 1e6 to
the diagonal distances). The GAN step calls D on the real and on the fake minibatch separately, so
the statistics are computed within each, as in the paper. Not reproduced from the improved-gan
code: its weight normalisation of ``T`` and its data-dependent initialisation; here ``T`` is
drawn from ``N(0, init_std²)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.core.players import Setup
from ganlab.tricks.base import Stage, Trick


class MinibatchDiscrimination(nn.Module):
    """``f (n, A) -> cat(f, o) (n, A + B)`` with ``o`` of Salimans et al. (2016) §3.2.

    Args:
        in_features: ``A``, the size of ``f(x)``.
        num_kernels: ``B``, the number of minibatch features ``o(x)_b``.
        kernel_dim: ``C``, the size of each row ``M_{i,b}``.
        init_std: ``T ~ N(0, init_std²)``.
        exclude_self: drop the ``j = i`` term (``o_b`` then sums over the other samples).
    """

    def __init__(
        self,
        in_features: int,
        num_kernels: int = 16,
        kernel_dim: int = 5,
        init_std: float = 0.1,
        exclude_self: bool = False,
    ) -> None:
        super().__init__()
        for key, value in (("in_features", in_features), ("num_kernels", num_kernels),
                           ("kernel_dim", kernel_dim)):
            if value < 1:
                raise GanlabError(f"minibatch_discrimination: {key} must be ≥ 1; got {value}")
        if init_std <= 0:
            raise GanlabError(f"minibatch_discrimination: init_std must be > 0; got {init_std}")
        self.in_features = int(in_features)
        self.num_kernels = int(num_kernels)
        self.kernel_dim = int(kernel_dim)
        self.exclude_self = bool(exclude_self)
        self.T = nn.Parameter(torch.randn(in_features, num_kernels, kernel_dim) * init_std)

    def similarity(self, f: Tensor) -> Tensor:
        """``o(x_i)_b = Σ_j exp(-‖M_{i,b} - M_{j,b}‖_1)``: ``(n, A) -> (n, B)``."""
        m = torch.einsum("na,abc->bnc", f, self.T)  # M_{i,b}, stored (B, n, C)
        c = torch.exp(-torch.cdist(m, m, p=1))  # [b, i, j]; 3x faster than broadcasting
        if self.exclude_self:
            eye = torch.eye(f.shape[0], dtype=torch.bool, device=f.device)
            c = c.masked_fill(eye, 0.0)
        return c.sum(2).t()

    def forward(self, f: Tensor) -> Tensor:
        """``(n, A) -> (n, A + B)``: ``cat(f(x_i), o(x_i))``."""
        return torch.cat([f, self.similarity(f)], dim=1)


def _drop_unused(net: nn.Module, data_shape: tuple[int, ...]) -> None:
    """Remove the submodules of ``net`` whose parameters ``net.features`` never uses (its own
    head), so they are neither optimised nor saved."""
    params = dict(net.named_parameters())
    if not params:
        return
    with evaluating(net):
        f = net.features(torch.zeros(2, *data_shape, device=next(iter(params.values())).device))
        grads = torch.autograd.grad(f.sum(), list(params.values()), allow_unused=True)
    unused = {name for name, g in zip(params, grads, strict=True) if g is None}
    dropped: list[str] = []
    for name, sub in list(net.named_modules()):
        if not name or any(name.startswith(d + ".") for d in dropped):
            continue
        names = [f"{name}.{p}" for p, _ in sub.named_parameters()]
        if names and all(n in unused for n in names):
            parent_name, _, child = name.rpartition(".")
            setattr(net.get_submodule(parent_name), child, None)
            dropped.append(name)


class MinibatchDiscriminator(nn.Module):
    """D with a minibatch discrimination layer between its features and a new linear head:
    ``features(x) = cat(f(x), o(x))``, ``head = Linear(A + B, 1)``. D's own head is dropped."""

    def __init__(self, discriminator: nn.Module, layer: MinibatchDiscrimination) -> None:
        super().__init__()
        self.body = discriminator
        self.mbd = layer
        self.feature_dim = layer.in_features + layer.num_kernels
        self.head_linear = nn.Linear(self.feature_dim, 1)
        if hasattr(discriminator, "data_shape"):
            self.data_shape = tuple(discriminator.data_shape)

    def features(self, x: Tensor) -> Tensor:
        """``(n, *data_shape) -> (n, A + B)``."""
        return self.mbd(self.body.features(x))

    def head(self, f: Tensor) -> Tensor:
        """``(n, A + B) -> (n,)`` logits."""
        return self.head_linear(f).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        """``(n, *data_shape) -> (n,)`` logits."""
        return self.head(self.features(x))


class MinibatchDiscriminationTrick(Trick):
    """Replaces D by :class:`MinibatchDiscriminator` (Salimans et al. 2016 §3.2)."""

    name = "minibatch_discrimination"
    stage = Stage.NETWORK
    needs = frozenset({"discriminator.features"})

    def __init__(
        self,
        num_kernels: int = 16,
        kernel_dim: int = 5,
        init_std: float = 0.1,
        exclude_self: bool = False,
    ) -> None:
        self.num_kernels = num_kernels
        self.kernel_dim = kernel_dim
        self.init_std = init_std
        self.exclude_self = exclude_self

    def setup(self, setup: Setup) -> None:
        d = setup.players.discriminator
        if hasattr(d, "data_shape"):
            _drop_unused(d, tuple(d.data_shape))
        layer = MinibatchDiscrimination(
            int(d.feature_dim), self.num_kernels, self.kernel_dim, self.init_std,
            self.exclude_self,
        )
        first = next(d.parameters(), None)
        wrapper = MinibatchDiscriminator(d, layer)
        setup.players.discriminator = wrapper if first is None else wrapper.to(first.device)
