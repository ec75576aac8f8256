"""The training progress bar, counting GAN iterations (``i/iterations``, resumed runs from
where they stopped) instead of Lightning's "Epoch 0" batches."""

from __future__ import annotations

import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm, _update_n

from ganlab.adapter.module import GANModule


class IterationProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar over the run's ``train.iterations``, labelled ``iterations``,
    without Lightning's ``v_num``; it closes at the last iteration, before the final
    evaluation prints."""

    description = "iterations"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._total, self._start = 0, 0

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(desc=self.description, total=self._total, initial=self._start,
                    position=2 * self.process_position, disable=self.is_disabled, leave=True,
                    dynamic_ncols=True, file=sys.stdout, smoothing=0,
                    bar_format=self.BAR_FORMAT)

    def on_train_start(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        self._total = int(trainer.datamodule.iterations)
        self._start = int(pl_module.iteration)
        self.train_progress_bar = self.init_train_tqdm()

    def on_train_epoch_start(self, trainer: L.Trainer, *_: Any) -> None:
        pass  # one bar for the whole run

    def cadences(self) -> tuple[int, ...]:
        """It redraws at multiples of its refresh rate (GANModule ends batches there)."""
        return (self.refresh_rate,)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: GANModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        bar, n = self.train_progress_bar, int(pl_module.iteration)
        if bar is not None and self._should_update(n, bar.total):
            _update_n(bar, n)
            bar.set_postfix(self.get_metrics(trainer, pl_module))
            if n >= bar.total:
                bar.close()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: GANModule) -> None:
        pass

    def get_metrics(self, trainer: L.Trainer, pl_module: GANModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
