"""The datamodule contract that the trainer relies on."""

from __future__ import annotations

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader

from ganlab.data.stream import MinibatchStream


def data_capabilities(data: object) -> frozenset[str]:
    """What ``data`` offers: ``data.labels`` (class labels), ``data.images`` (image tensors
    ``(C, H, W)``), ``data.mode_centers`` (a mixture with known modes)."""
    caps = set()
    if getattr(data, "num_classes", None):
        caps.add("data.labels")
    if len(tuple(getattr(data, "data_shape", ()))) == 3:
        caps.add("data.images")
    if getattr(data, "mode_centers", None) is not None:
        caps.add("data.mode_centers")
    return frozenset(caps)


class GANDataModule(L.LightningDataModule):
    """Base of every ganlab datamodule.

    Subclasses set ``data_shape`` (shape of one sample, e.g. ``(2,)`` or ``(1, 28, 28)``) and
    ``num_classes`` (``None`` when unlabelled) in ``__init__`` or ``prepare``; load their data in
    ``prepare`` (called from ``setup``; raises ``GanlabError`` with one clear
    line when files are missing); and implement :meth:`sample`, the global minibatch ``index``
    of ``world_size * batch_size`` rows, a pure function of ``(seed, index)``.

    Image data is scaled to [-1, 1] (the range of a tanh generator).
    """

    data_shape: tuple[int, ...]
    num_classes: int | None = None

    def __init__(self, batch_size: int, d_steps: int, iterations: int, seed: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.d_steps = d_steps
        self.iterations = iterations
        self.seed = seed
        self._prepared = False

    # -- subclass API ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Load (or check) the data; sets ``data_shape``. Called once."""

    def sample(self, index: int) -> tuple[Tensor, Tensor]:
        """Global minibatch ``index``: ``(x, y)`` with ``world_size * batch_size`` rows."""
        raise NotImplementedError

    def capabilities(self) -> frozenset[str]:
        """What these data offer (:func:`data_capabilities`)."""
        return data_capabilities(self)

    # -- Lightning ------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if not self._prepared:
            self.prepare()
            self._prepared = True

    @property
    def world_size(self) -> int:
        return self.trainer.world_size if self.trainer is not None else 1

    @property
    def rank(self) -> int:
        return self.trainer.global_rank if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        """The remaining iterations, from the module's ``iteration`` counter (restored from the
        checkpoint when resuming): in chunks of ``module.chunk_length(i)`` iterations when the
        module plans them (:class:`~ganlab.adapter.module.GANModule`), else one per chunk."""
        module = self.trainer.lightning_module if self.trainer is not None else None
        stream = MinibatchStream(
            self.sample,
            iterations=self.iterations,
            d_steps=self.d_steps,
            batch_size=self.batch_size,
            start=lambda: int(getattr(module, "iteration", 0)),
            rank=self.rank,
            world_size=self.world_size,
            chunk=getattr(module, "chunk_length", None),
        )
        return DataLoader(stream, batch_size=None)
