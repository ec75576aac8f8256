"""Data parallelism with one DistributedDataParallel per player (``trainer=ddp``).

Lightning's ``ddp`` wraps the whole GANModule in one DDP. A GAN's alternating updates use half
of that module per backward pass: D's parameters take no gradient in a G step, and G's none in
a D step (G runs under ``no_grad`` there). One DDP then either fails at the first G step
("parameters that were not used in producing the loss") or, with
``find_unused_parameters=True``, walks the autograd graph after every backward pass and still
all-reduces the gradient buckets of both networks.

:class:`SplitDDPStrategy` leaves the LightningModule unwrapped and wraps ``generator`` and
``discriminator`` in a DDP each. Like Lightning's own DDP under manual optimization, it drives
each DDP's reducer directly rather than through DDP's forward: before a backward pass
(:meth:`pre_backward`) it prepares the reducer of every network that ran a forward pass with
gradients since the last backward pass (a forward hook records it), so a D step all-reduces
D's gradients only, a G step G's only, and D's forward in the G step (its parameters frozen)
arms nothing. As in DDP's forward, buffers (batch-norm statistics) are broadcast from rank 0
once per training step. The networks and their state-dict keys are unchanged, so checkpoints
are the same under every strategy. ``benchmarks/ddp.py`` measures both strategies.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.overrides.distributed import prepare_for_backward
from lightning.pytorch.strategies import DDPStrategy
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.hooks import RemovableHandle

#: The LightningModule attributes that are wrapped, each in its own DDP.
PLAYERS = ("generator", "discriminator")


class SplitDDPStrategy(DDPStrategy):
    """DDP with ``generator`` and ``discriminator`` wrapped apart (see the module docstring).

    Args:
        players: attribute names of the networks to wrap (each must have parameters).
        find_unused_parameters: passed to each DDP; ``False`` (the default) suits networks whose
            every parameter takes part in each of their own steps.
        **kwargs: the arguments of :class:`lightning.pytorch.strategies.DDPStrategy`.
    """

    strategy_name = "ddp_split"

    def __init__(self, players: tuple[str, ...] | list[str] = PLAYERS,
                 find_unused_parameters: bool = False, **kwargs: Any) -> None:
        super().__init__(find_unused_parameters=find_unused_parameters, **kwargs)
        self.players = tuple(players)
        self._wrapped: dict[str, DistributedDataParallel] = {}
        self._armed: set[str] = set()
        self._hooks: list[RemovableHandle] = []

    def configure_ddp(self) -> None:
        """Wrap each player in its own DDP; the LightningModule itself stays unwrapped."""
        module = self.lightning_module
        assert module is not None and self.model is module
        for name in self.players:
            net: nn.Module = getattr(module, name)
            ddp = self._setup_model(net)
            ddp._lazy_init()  # what DDP's first forward would do
            self._wrapped[name] = ddp
            self._hooks.append(net.register_forward_hook(self._recorder(name)))

    def _recorder(self, name: str) -> Any:
        def record(net: nn.Module, _inputs: Any, _output: Any) -> None:
            if torch.is_grad_enabled() and any(p.requires_grad for p in net.parameters()):
                self._armed.add(name)

        return record

    @property
    def wrapped(self) -> dict[str, DistributedDataParallel]:
        """The DDP of each player (empty outside of fitting)."""
        return dict(self._wrapped)

    def training_step(self, *args: Any, **kwargs: Any) -> Any:
        for ddp in self._wrapped.values():  # as DDP's forward does, once per step
            if ddp.will_sync_module_buffers():
                ddp._sync_buffers()
        return super().training_step(*args, **kwargs)

    def pre_backward(self, closure_loss: Tensor) -> None:
        """Arm the reducer of each player whose forward pass this backward pass goes through."""
        for name in sorted(self._armed):
            prepare_for_backward(self._wrapped[name], closure_loss)
        self._armed.clear()

    def post_backward(self, closure_loss: Tensor) -> None:
        pass

    def teardown(self) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        self._wrapped.clear()
        self._armed.clear()
        super().teardown()
