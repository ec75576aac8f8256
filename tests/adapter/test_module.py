"""GANModule: Algorithm 1 of Goodfellow et al. (2014), counted in iterations."""

from __future__ import annotations

import json

import pytest
import torch

from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.core.errors import GanlabError
from ganlab.tricks.base import Trick


class Recorder(Trick):
    """Records the order of optimizer steps and the real minibatches D sees."""

    name = "recorder"

    def __init__(self) -> None:
        self.events: list[str] = []
        self.d_params_after_d: list[torch.Tensor] = []
        self.module = None

    def after_d_step(self, step) -> None:
        self.events.append("D")
        self.d_snapshot = [p.detach().clone() for p in step.players.discriminator.parameters()]

    def after_g_step(self, step) -> None:
        self.events.append("G")
        unchanged = all(
            torch.equal(a, b)
            for a, b in zip(self.d_snapshot, step.players.discriminator.parameters(),
                            strict=True)
        )
        self.events.append("D unchanged" if unchanged else "D CHANGED")


def run_with_recorder(make_cfg, *overrides):
    cfg = make_cfg(*overrides)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    recorder = Recorder()
    module.family.plugins.items.append(recorder)
    from ganlab.app.build import build_trainer

    trainer = build_trainer(cfg, module)
    trainer.fit(module, datamodule=datamodule)
    return module, trainer, recorder


@pytest.mark.parametrize("k", [1, 3])
def test_iterations_count_generator_updates_exactly(make_cfg, k: int) -> None:
    n = 7
    module, trainer, recorder = run_with_recorder(
        make_cfg, f"train.iterations={n}", f"train.d_steps={k}", "metrics.every_n_iterations=0"
    )
    assert module.iteration == n
    # Algorithm 1: k D updates, then one G update, in every iteration.
    assert recorder.events == (["D"] * k + ["G", "D unchanged"]) * n
    # Adam's own step counters: exactly N generator and k*N discriminator updates.
    g_opt, d_opt = (o.optimizer if hasattr(o, "optimizer") else o for o in trainer.optimizers)
    g_steps = {int(g_opt.state[p]["step"]) for p in module.generator.parameters()}
    d_steps = {int(d_opt.state[p]["step"]) for p in module.discriminator.parameters()}
    assert g_steps == {n}
    assert d_steps == {k * n}
    # Lightning counts every optimizer step.
    assert trainer.global_step == (k + 1) * n


def test_each_d_step_gets_a_fresh_real_minibatch(make_cfg) -> None:
    cfg = make_cfg("train.iterations=2", "train.d_steps=3")
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    seen: list[torch.Tensor] = []
    real_d_step = module.family.discriminator_step

    def spy(real, labels, ctx):
        seen.append(real.clone())
        return real_d_step(real, labels, ctx)

    module.family.discriminator_step = spy
    from ganlab.app.build import build_trainer

    build_trainer(cfg).fit(module, datamodule=datamodule)
    assert len(seen) == 6
    expected = [datamodule.sample(i)[0] for i in range(6)]
    for got, want in zip(seen, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert not torch.equal(seen[0], seen[1])


def test_run_writes_metrics_checkpoint_and_figures(make_cfg, tmp_path) -> None:
    cfg = make_cfg("train.iterations=20", "metrics.every_n_iterations=10")
    metrics = train(cfg)
    out = tmp_path / "run"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == metrics
    assert saved["iterations"] == 20
    assert set(saved) >= {"modes_covered", "hq_fraction", "reverse_kl", "num_samples"}
    assert 0 <= saved["modes_covered"] <= 25
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert not list((out / "checkpoints").glob(".*tmp"))
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "scatter_0000010.png",
        "scatter_0000020.png",
    ]


class NaNLoss:
    """A non-saturating loss whose D cost turns NaN from iteration ``at`` on."""

    def __init__(self, module_ref: list, at: int) -> None:
        from ganlab.losses import NonSaturating

        self.inner = NonSaturating()
        self.module_ref = module_ref
        self.at = at

    def d_loss(self, real_logits, fake_logits):
        cost = self.inner.d_loss(real_logits, fake_logits)
        return cost * float("nan") if self.module_ref[0].iteration >= self.at else cost

    def g_loss(self, fake_logits):
        return self.inner.g_loss(fake_logits)


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(make_cfg, tmp_path):
    cfg = make_cfg("train.iterations=40", "callbacks.checkpoint.every_n_iterations=10",
                   "metrics.every_n_iterations=0")
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    ref = [module]
    module.family.loss = NaNLoss(ref, at=13)
    from ganlab.app.build import build_trainer

    with pytest.raises(GanlabError, match=r"diverged at iteration 15: train/d_loss = nan"):
        build_trainer(cfg).fit(module, datamodule=datamodule)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ganlab"]["iteration"] == 10
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
