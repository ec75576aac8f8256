"""Deterministic minibatch streams: the batch of iteration ``i`` is a function of ``(seed, i)``.

One GAN iteration takes ``k = train.d_steps`` real minibatches (one per discriminator step), so
the stream yields chunks of ``K >= 1`` consecutive iterations, pairs ``(x, y)`` with ``x`` of
shape ``(K, k, B, *data_shape)`` and ``y`` (labels, or mode indices for the toy mixtures) of
shape ``(K, k, B)``: one item format, whatever ``K`` is.

Because every minibatch is a function of its global index, resuming at iteration ``i`` replays
exactly the data an uninterrupted run would have seen, with no sampler state to save; and
under data parallelism rank ``r`` of ``W`` takes the ``r``-th slice of the same global batch
of ``W * B`` samples, so a multi-process run sees the data of a single-process run with the
same global batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.utils.data import IterableDataset

#: The most bytes one chunk of iterations holds (a chunk of large images is cut shorter).
MAX_CHUNK_BYTES = 64 * 2**20

#: ``sample(index) -> (x, y)``: the global minibatch number ``index`` (``W * B`` samples).
MinibatchFn = Callable[[int], tuple[Tensor, Tensor]]


def generator_for(seed: int, index: int) -> torch.Generator:
    """A CPU generator seeded by ``(seed, index)``, independent across indices."""
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + index * 7_919 + 12_345) % (2**63 - 1))
    return g


class MinibatchStream(IterableDataset):
    """Yields the real data of iterations ``start .. iterations - 1`` in chunks ``(K, k, B, ...)``.

    Args:
        sample: returns global minibatch ``index`` as ``(x, y)`` with ``world_size * batch_size``
            rows.
        iterations: total generator updates of the run (the user's ``train.iterations``).
        d_steps: discriminator updates per iteration (``k``).
        batch_size: per-process minibatch size ``B``.
        start: first iteration to yield (the iteration a resumed run continues from), or a
            function returning it, read each time iteration starts.
        rank, world_size: this process's slice of each global minibatch.
        chunk: ``K = chunk(i)`` iterations from iteration ``i`` on in one item (at least 1, cut
            at the run's end, and to at most :data:`MAX_CHUNK_BYTES`): the adapter's Lightning
            batch, so Lightning's per-batch cost is paid once per ``K`` iterations; without it,
            ``K = 1``.
    """

    def __init__(
        self,
        sample: MinibatchFn,
        iterations: int,
        d_steps: int,
        batch_size: int,
        start: int | Callable[[], int] = 0,
        rank: int = 0,
        world_size: int = 1,
        chunk: Callable[[int], int] | None = None,
    ) -> None:
        super().__init__()
        self.sample = sample
        self.iterations = iterations
        self.d_steps = d_steps
        self.batch_size = batch_size
        self.start = start
        self.rank = rank
        self.world_size = world_size
        self.chunk = chunk

    def __len__(self) -> int:
        """The whole run's length in iterations (with ``chunk``, an upper bound of its items:
        the stream ends when the run does), so Lightning's batch counter continues across a
        resume."""
        return self.iterations

    def first_iteration(self) -> int:
        return int(self.start() if callable(self.start) else self.start)

    def iteration(self, it: int) -> tuple[Tensor, Tensor]:
        """This process's ``(x, y)`` of iteration ``it``: ``(k, B, ...)`` each."""
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        xs, ys = [], []
        for step in range(self.d_steps):
            x, y = self.sample(it * self.d_steps + step)
            xs.append(x[lo:hi])
            ys.append(y[lo:hi])
        return torch.stack(xs), torch.stack(ys)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        it = self.first_iteration()
        while it < self.iterations:
            wanted = 1 if self.chunk is None else int(self.chunk(it))
            count = min(max(wanted, 1), self.iterations - it)
            first = self.iteration(it)
            size = sum(t.numel() * t.element_size() for t in first)
            count = max(1, min(count, MAX_CHUNK_BYTES // max(size, 1)))
            parts = [first, *(self.iteration(i) for i in range(it + 1, it + count))]
            xs, ys = zip(*parts, strict=True)
            yield torch.stack(xs), torch.stack(ys)
            it += count
