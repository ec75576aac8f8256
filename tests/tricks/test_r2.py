"""R2 (src/ganlab/tricks/r2.py): the penalty by hand, and through a real run."""

import torch
from nets_helpers import LinearCritic
from plugin_helpers import dstep, setup

from ganlab.app.train import train
from ganlab.tricks.r2 import R2


def test_r2_is_half_gamma_times_the_squared_gradient_norm_at_the_fakes() -> None:
    critic = LinearCritic([3.0, 4.0])  # grad_x D = w everywhere: ||w||^2 = 25
    trick = R2(gamma=2.0)
    players = setup(trick, discriminator=critic).players
    fake = torch.randn(8, 2, dtype=torch.float64)
    step = dstep(critic(fake), critic(fake), fake, fake, players_=players)
    cost = trick.d_cost(torch.tensor(1.0, dtype=torch.float64), step)
    assert float(cost.detach()) == 1.0 + (2.0 / 2) * 25.0


def test_r2_acts_inside_the_real_training_step(make_cfg) -> None:
    """gamma = 0 leaves the run bit-identical to the plain GAN; gamma = 10 changes it."""
    plain = train(make_cfg("train.iterations=3"))
    assert train(make_cfg("train.iterations=3", "tricks=[r2]", "tricks.r2.gamma=0")) == plain
    assert train(make_cfg("train.iterations=3", "tricks=[r2]"))["reverse_kl"] != plain["reverse_kl"]
