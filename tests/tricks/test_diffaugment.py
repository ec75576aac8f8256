"""DiffAugment (``ganlab.tricks.diffaugment``): each operation by hand, the draw order and
ranges of the reference code, gradients, every input of D, and exact resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ganlab.app.train import train
from ganlab.core.errors import GanlabError
from ganlab.tricks.diffaugment import (
    DiffAugment,
    brightness,
    contrast,
    cut_out,
    saturation,
    translate,
)

# Two channels, one row of two pixels: channel 0 = [1, 3], channel 1 = [3, 5].
X = torch.tensor([[[[1.0, 3.0]], [[3.0, 5.0]]]])
GRID = torch.arange(9.0).view(1, 1, 3, 3)


def test_colour_operations_by_hand() -> None:
    torch.testing.assert_close(brightness(X, torch.tensor([0.25])), X - 0.25)
    # Channel means per pixel [2, 4]; factor 2u = 1.5.
    torch.testing.assert_close(saturation(X, torch.tensor([0.75])),
                               torch.tensor([[[[0.5, 2.5]], [[3.5, 5.5]]]]))
    # Image mean 3; factor u + 0.5 = 0.5.
    torch.testing.assert_close(contrast(X, torch.tensor([0.0])),
                               torch.tensor([[[[2.0, 3.0]], [[3.0, 4.0]]]]))
    one_channel = X[:, :1]
    torch.testing.assert_close(saturation(one_channel, torch.tensor([0.9])), one_channel)


@pytest.mark.parametrize(("tx", "ty", "expected"), [
    (1, 0, [[3, 4, 5], [6, 7, 8], [0, 0, 0]]),   # out[i, j] = x[i + 1, j]
    (-1, 1, [[0, 0, 0], [1, 2, 0], [4, 5, 0]]),  # out[i, j] = x[i - 1, j + 1]
    (2, -2, [[0, 0, 6], [0, 0, 0], [0, 0, 0]]),  # beyond the 1-pixel padding: still 0
    (0, 0, [[0, 1, 2], [3, 4, 5], [6, 7, 8]]),
])
def test_translation_by_hand(tx: int, ty: int, expected: list[list[int]]) -> None:
    out = translate(GRID, torch.tensor([tx]), torch.tensor([ty]))
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float32).view(1, 1, 3, 3))


def test_cutout_by_hand() -> None:
    ones = torch.ones(2, 1, 4, 4)
    out = cut_out(ones, torch.tensor([1, 0]), torch.tensor([2, 0]), (2, 2))
    first = torch.ones(4, 4)
    first[0:2, 1:3] = 0  # rows ox - 1 .. ox, columns oy - 1 .. oy
    second = torch.ones(4, 4)
    second[0, 0] = 0  # the square [-1, 0] x [-1, 0] clipped to the corner
    torch.testing.assert_close(out[:, 0], torch.stack([first, second]))


def test_the_trick_draws_as_the_reference_code_does() -> None:
    """Per image: three U[0, 1) for brightness, saturation, contrast; shifts in [-4, 4] for a
    32-pixel side (int(32/8 + 0.5)); cutout side 16 with centres in [0, 32]; in that order."""
    torch.manual_seed(0)
    x = torch.randn(5, 3, 32, 32)
    trick = DiffAugment(seed=7)
    out = trick.d_input(x, 0)
    g = torch.Generator().manual_seed(7)
    u = [torch.rand(5, generator=g) for _ in range(3)]
    tx, ty = (torch.randint(-4, 5, (5,), generator=g) for _ in range(2))
    ox, oy = (torch.randint(0, 33, (5,), generator=g) for _ in range(2))
    expected = contrast(saturation(brightness(x, u[0]), u[1]), u[2])
    expected = cut_out(translate(expected, tx, ty), ox, oy, (16, 16))
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    # The next call draws new parameters: same distribution, another transformation.
    assert not torch.equal(trick.d_input(x, 0), out)


def test_policy_order_and_subsets() -> None:
    x = torch.randn(3, 1, 28, 28)
    trick = DiffAugment(policy="translation", seed=1)
    g = torch.Generator().manual_seed(1)
    # 28-pixel side: shifts in [-4, 4] (int(3.5 + 0.5)).
    tx, ty = (torch.randint(-4, 5, (3,), generator=g) for _ in range(2))
    torch.testing.assert_close(trick.d_input(x, 0), translate(x, tx, ty), rtol=0, atol=0)
    listed = DiffAugment(policy=["translation"], seed=1)  # a list or the reference's string
    torch.testing.assert_close(listed.d_input(x, 0), translate(x, tx, ty), rtol=0, atol=0)
    cut = DiffAugment(policy="cutout", seed=1)
    g = torch.Generator().manual_seed(1)
    ox, oy = (torch.randint(0, 29, (3,), generator=g) for _ in range(2))  # side 14: even
    torch.testing.assert_close(cut.d_input(x, 0), cut_out(x, ox, oy, (14, 14)), rtol=0, atol=0)


def test_seed_none_takes_the_runs_seed() -> None:
    x = torch.randn(4, 1, 8, 8)
    trick = DiffAugment(seed=None)
    trick.setup(SimpleNamespace(seed=5, discriminator=SimpleNamespace(data_shape=(1, 8, 8))))
    torch.testing.assert_close(trick.d_input(x, 0), DiffAugment(seed=5).d_input(x, 0),
                               rtol=0, atol=0)
    assert not torch.equal(DiffAugment(seed=6).d_input(x, 0), DiffAugment(seed=5).d_input(x, 0))


def test_gradients_flow_through_every_operation() -> None:
    x = GRID.clone().requires_grad_(True)
    translate(x, torch.tensor([1]), torch.tensor([0])).sum().backward()
    # Rows 1 and 2 are read once each, row 0 never.
    torch.testing.assert_close(x.grad[0, 0], torch.tensor([[0.0] * 3, [1.0] * 3, [1.0] * 3]))
    x.grad = None
    cut_out(x, torch.tensor([1]), torch.tensor([1]), (2, 2)).sum().backward()
    mask = torch.ones(3, 3)
    mask[0:2, 0:2] = 0
    torch.testing.assert_close(x.grad[0, 0], mask)
    # Through the whole policy to a generator's weights.
    torch.manual_seed(0)
    gen = torch.nn.Linear(4, 3 * 8 * 8)
    fake = gen(torch.randn(6, 4)).view(6, 3, 8, 8)
    DiffAugment(seed=0).d_input(fake, 0).square().sum().backward()
    assert gen.weight.grad is not None and gen.weight.grad.abs().sum() > 0


def test_bad_policy_and_ratios_are_one_line() -> None:
    for kwargs in ({"policy": "colour"}, {"policy": ""}, {"policy": []},
                   {"policy": ["cutout", "cutout"]},
                   {"cutout_ratio": 1.5}, {"translation_ratio": -0.1}):
        with pytest.raises(GanlabError) as info:
            DiffAugment(**kwargs)
        assert "\n" not in str(info.value) and str(info.value).startswith("diffaugment")
    with pytest.raises(GanlabError, match="image inputs"):
        DiffAugment().d_input(torch.zeros(4, 2), 0)


def test_toy_data_fails_before_training(make_cfg) -> None:
    with pytest.raises(GanlabError, match=r"^trick 'diffaugment' needs data.images, which data "
                       r"'toy_grid' does not provide$"):
        train(make_cfg("tricks=[diffaugment]", "train.iterations=1"))


TINY = ["data=mnist_offline", "generator=dcgan", "discriminator=dcgan",
        "generator.latent_dim=8", "generator.net.base_width=4", "discriminator.net.base_width=4",
        "train.batch_size=8", "metrics.every_n_iterations=0", "tricks=[diffaugment]",
        "tricks.diffaugment.policy=[color,translation,cutout]"]


def test_every_input_of_d_is_augmented_in_both_steps(make_cfg, monkeypatch) -> None:
    """Per iteration (d_steps = 2): real and fake of each D step, then the fake of the G step,
    which carries G's gradient through the augmentation."""
    calls: list[tuple[bool, tuple[int, ...]]] = []
    original = DiffAugment.d_input

    def spy(self: DiffAugment, x: torch.Tensor, iteration: int) -> torch.Tensor:
        out = original(self, x, iteration)
        calls.append((x.requires_grad, tuple(out.shape)))
        assert not torch.equal(out, x)
        return out

    monkeypatch.setattr(DiffAugment, "d_input", spy)
    train(make_cfg(*TINY, "train.iterations=2", "train.d_steps=2"))
    pattern = [False, False, False, False, True]
    assert [grad for grad, _ in calls] == pattern * 2
    assert {shape for _, shape in calls} == {(8, 1, 28, 28)}


def test_resume_is_bit_identical(make_cfg, tmp_path) -> None:
    common = [*TINY, "train.iterations=6", "trainer.deterministic=true",
              "callbacks.checkpoint.every_n_iterations=3",
              "callbacks.checkpoint.keep_every_n_iterations=3"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    train(make_cfg(*common, out=full))
    ckpt = full / "checkpoints" / "iter_3.ckpt"
    plugins = torch.load(ckpt, weights_only=True)["ganlab"]["family"]["plugins"]
    saved = plugins["diffaugment"]["state"]
    assert not torch.equal(saved, torch.Generator().manual_seed(0).get_state())
    train(make_cfg(*common, f"ckpt_path={ckpt}", out=resumed))
    a = torch.load(full / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert torch.equal(a["ganlab"]["family"]["plugins"]["diffaugment"]["state"],
                       b["ganlab"]["family"]["plugins"]["diffaugment"]["state"])
    # Without the saved generator state the resumed run differs (the check can fail).
    fresh = tmp_path / "fresh"
    state = torch.load(ckpt, weights_only=True)
    state["ganlab"]["family"]["plugins"] = {}
    torch.save(state, tmp_path / "copy.ckpt")
    train(make_cfg(*common, f"ckpt_path={tmp_path / 'copy.ckpt'}", out=fresh))
    c = torch.load(fresh / "checkpoints" / "last.ckpt", weights_only=True)
    assert not all(torch.equal(a["state_dict"][k], c["state_dict"][k]) for k in a["state_dict"])
