"""Stratified hold-out splits, and the image datamodules' ``held_out`` option."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.core.seeds import HELD_OUT_SEED
from ganlab.data.images import ImageDataModule
from ganlab.data.split import stratified_split
from ganlab.metrics.classifier import stratified_split as classifier_split


def test_split_holds_out_the_same_share_of_every_class() -> None:
    labels = torch.tensor([0] * 10 + [1] * 20 + [2] * 5)
    kept, held = stratified_split(labels, 0.2, seed=4)
    assert torch.bincount(labels[held]).tolist() == [2, 4, 1]
    assert sorted(torch.cat([kept, held]).tolist()) == list(range(35))
    assert torch.equal(held, stratified_split(labels, 0.2, seed=4)[1])
    assert not torch.equal(held, stratified_split(labels, 0.2, seed=5)[1])
    # The classifier's split is this one.
    assert all(torch.equal(a, b) for a, b in zip(classifier_split(labels, 0.2, 4),
                                                 (kept, held), strict=True))
    with pytest.raises(ValueError):
        stratified_split(labels, 0.0, seed=0)


class Synthetic(ImageDataModule):
    """40 images 1x2x2 whose pixels hold their index, labels index % 4."""

    num_classes = 4

    def load(self) -> tuple[Tensor, Tensor]:
        idx = torch.arange(40, dtype=torch.uint8)
        return idx.view(40, 1, 1, 1).expand(40, 1, 2, 2).contiguous(), idx.long() % 4


def _dm(held_out: float) -> Synthetic:
    dm = Synthetic(held_out=held_out, batch_size=4, d_steps=1, iterations=1, seed=0)
    dm.setup()
    return dm


def test_held_out_images_never_reach_training() -> None:
    dm = _dm(0.25)
    kept, held = stratified_split(torch.arange(40) % 4, 0.25, HELD_OUT_SEED)
    assert dm.held_out_images is not None and dm.held_out_labels is not None
    assert dm.held_out_images[:, 0, 0, 0].long().tolist() == held.tolist()
    assert dm.held_out_labels.tolist() == (held % 4).tolist()
    assert dm.images[:, 0, 0, 0].long().tolist() == kept.tolist()
    # round(0.25 * 10) = 2 per class (Python rounds half to even): 8 held out, 32 kept.
    assert len(held) == 8 and dm.num_samples == 32
    seen = {int(v) for i in range(20) for v in ((dm.sample(i)[0][:, 0, 0, 0] + 1) * 127.5)
            .round().long()}
    assert seen == set(kept.tolist())
    assert _dm(0.25).seed == 0 and torch.equal(_dm(0.25).held_out_images, dm.held_out_images)


def test_no_hold_out_by_default() -> None:
    dm = _dm(0.0)
    assert dm.held_out_images is None and dm.num_samples == 40


@pytest.mark.parametrize("held_out", [-0.1, 1.0])
def test_bad_share_is_one_line(held_out: float) -> None:
    with pytest.raises(GanlabError, match="data.held_out must be in"):
        _dm(held_out)
