"""packing (PacGAN) through the real step: D is built m times wider and judges packs of m
consecutive, independently drawn samples that are all real or all generated."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.testing import assert_close

from ganlab.core.errors import GanlabError
from ganlab.tricks.packing import PackedDiscriminator, Packing, pack
from tricks.runs import DCGAN, baseline, differ, ns_d_cost, players, run, scalar


def test_pack_concatenates_consecutive_rows_along_the_first_sample_axis() -> None:
    x = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).view(4, 3, 2, 2)
    packed = pack(x, 2)
    assert packed.shape == (2, 6, 2, 2)
    assert torch.equal(packed[1], torch.cat([x[2], x[3]], 0))
    vectors = torch.arange(12.0).view(6, 2)
    assert torch.equal(pack(vectors, 3), torch.tensor([[0.0, 1, 2, 3, 4, 5],
                                                       [6, 7, 8, 9, 10, 11]]))
    assert torch.equal(pack(x, 1), x)


def test_shape_and_bad_m() -> None:
    assert Packing(4).discriminator_shape((1, 28, 28)) == (4, 28, 28)
    assert Packing(2).discriminator_shape((2,)) == (4,)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(GanlabError, match="packing: m must be a positive integer"):
            Packing(bad)
    with pytest.raises(GanlabError, match=r"trick 'packing' \(m=4\) needs minibatches of a "
                                          r"multiple of 4 samples; got 6"):
        pack(torch.zeros(6, 2), 4)


class Recorder(torch.nn.Module):
    """A body that records the packs it is given and returns their first entry."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(x)
        return x[:, 0]


def test_packed_d_gives_one_logit_per_pack() -> None:
    body = Recorder()
    d = PackedDiscriminator(body, 3)
    x = torch.randn(6, 2)
    assert torch.equal(d(x), x[[0, 3], 0])
    assert body.seen[0].shape == (2, 6) and d.samples_per_logit == 3


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("net", ["mlp", "dcgan", "resnet"])
def test_every_d_of_the_lab_is_packed(make_cfg, tmp_path, net: str, m: int) -> None:
    """The packed D has an m-times-wider first layer and judges B / m packs; the real packs
    hold only real rows, the fake packs only G's rows, each pack m distinct draws."""
    overrides = {"mlp": ["data=toy_grid", "train.batch_size=8"],
                 "dcgan": DCGAN,
                 "resnet": [*DCGAN, "generator=resnet", "discriminator=resnet",
                            "generator.net.base_width=8", "discriminator.net.base_width=8",
                            "loss=hinge"]}[net]
    if net != "mlp":
        pytest.importorskip("mlxtend")
    out = run(make_cfg, tmp_path / net, *overrides, "tricks=[packing]", f"tricks.packing.m={m}")
    d = out.module.discriminator
    assert isinstance(d, PackedDiscriminator) and d.samples_per_logit == m
    first = next(p for p in d.body.parameters() if p.dim() > 1)
    plain = baseline(make_cfg, tmp_path / f"{net}_plain", *overrides)
    plain_first = next(p for k, p in plain.module.discriminator.named_parameters()
                       if p.dim() > 1)
    in_axis = 1 if first.dim() == 2 or first.shape[1] != plain_first.shape[1] else 0
    assert first.shape[in_axis] == m * plain_first.shape[in_axis]
    real_call, fake_call = out.d_calls[0], out.d_calls[1]  # the D step: real, then fake
    n = real_call.input.shape[0]
    assert real_call.output.shape == fake_call.output.shape == (n // m,)
    fake = out.g_calls[0].output  # the D step's fake minibatch
    assert torch.equal(fake_call.input, fake)
    batch_rows = {bytes(r.numpy()) for r in fake}
    assert not any(bytes(r.numpy()) in batch_rows for r in real_call.input)
    for j in range(n // m):
        rows = fake_call.input[j * m:(j + 1) * m]
        assert len({bytes(r.numpy()) for r in rows}) == m  # m independent draws
    latents = out.g_calls[0].input
    assert len({bytes(r.numpy()) for r in latents}) == n


def test_the_costs_average_over_packs(make_cfg, tmp_path) -> None:
    base = baseline(make_cfg, tmp_path / "base", "data=toy_grid", "train.batch_size=8")
    packed = run(make_cfg, tmp_path / "pac", "data=toy_grid", "train.batch_size=8",
                 "tricks=[packing]", "tricks.packing.m=4")
    assert differ(players(base.final, "generator."), players(packed.final, "generator."))
    real, fake = packed.d_calls[0], packed.d_calls[1]
    with torch.no_grad():  # D as built, on the packs by hand
        body = packed.d0.body
        real_logits = body(real.input.reshape(2, 8))
        fake_logits = body(fake.input.reshape(2, 8))
    assert torch.equal(real.output, real_logits)
    assert_close(scalar(packed.logged[1]["train/d_loss"]), ns_d_cost(real_logits, fake_logits))


@pytest.mark.parametrize("overrides, message", [
    (["data=toy_grid", "train.batch_size=6", "tricks.packing.m=4"],
     "needs minibatches of a multiple of 4 samples; got 6"),
    (["data=toy_grid", "conditioning=concat"],
     "trick 'packing' cannot be used with conditioning 'concat'"),
    (["data=toy_grid", "loss=wgan_gp"],
     "trick 'packing' cannot be used with regulariser 'gradient_penalty'"),
])
def test_bad_combinations_are_one_line(make_cfg, tmp_path, overrides, message) -> None:
    with pytest.raises(GanlabError, match=message):
        run(make_cfg, tmp_path / "bad", *overrides, "tricks=[packing]")
