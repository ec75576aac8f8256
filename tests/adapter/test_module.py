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


class Batches:
    """A callback that records how many iterations each Lightning batch held."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self):
        import lightning as L

        outer = self

        class Record(L.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
                outer.start = pl_module.iteration

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                outer.sizes.append(pl_module.iteration - outer.start)

        return Record()


def chunked_run(make_cfg, tmp_path, per_batch: int, *overrides: str):
    from ganlab.app.build import build_trainer

    cfg = make_cfg("train.iterations=23", "train.log_every_n_iterations=4",
                   "metrics.every_n_iterations=0", "callbacks.checkpoint.every_n_iterations=9",
                   "callbacks.checkpoint.keep_every_n_iterations=9",
                   f"train.iterations_per_batch={per_batch}", *overrides,
                   out=tmp_path / f"chunk{per_batch}")
    torch.manual_seed(cfg.seed)  # the same initial weights in both runs
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, module)
    batches = Batches()
    trainer.callbacks.append(batches())
    logged: dict[int, dict[str, float]] = {}
    module.log_metrics = lambda m: logged.setdefault(module.iteration, {}).update(m)
    trainer.fit(module, datamodule=datamodule)
    return module, trainer, batches.sizes, logged


def test_a_batch_holds_iterations_up_to_the_next_cadence(make_cfg, tmp_path) -> None:
    module, trainer, sizes, _ = chunked_run(make_cfg, tmp_path, 10)
    # Batches end at multiples of 4 (logging) and 9 (checkpoints), and at 23 (the end).
    ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    assert ends == [4, 8, 9, 12, 16, 18, 20, 23]
    assert module.chunk_length(0) == 4 and module.chunk_length(17) == 1
    module.iterations_per_batch = 3
    assert module.chunk_length(0) == 3 and module.chunk_length(9) == 3
    assert trainer.global_step == 2 * 23


def test_a_run_is_the_same_for_every_batch_length(make_cfg, tmp_path) -> None:
    one, _, sizes_one, logged_one = chunked_run(make_cfg, tmp_path, 1)
    ten, _, sizes_ten, logged_ten = chunked_run(make_cfg, tmp_path, 10)
    assert set(sizes_one) == {1} and max(sizes_ten) == 4
    assert logged_one == logged_ten and sorted(logged_one) == [4, 8, 12, 16, 20, 23]
    a, b = one.state_dict(), ten.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    for name in ("iter_9.ckpt", "iter_18.ckpt", "last.ckpt"):
        ca = torch.load(tmp_path / "chunk1" / "checkpoints" / name, weights_only=False)
        cb = torch.load(tmp_path / "chunk10" / "checkpoints" / name, weights_only=False)
        assert ca["ganlab"]["iteration"] == cb["ganlab"]["iteration"]
        assert all(torch.equal(ca["state_dict"][k], cb["state_dict"][k]) for k in ca["state_dict"])


def test_a_pending_stop_ends_the_batch_after_the_running_iteration(make_cfg, tmp_path) -> None:
    import lightning as L

    class StopAtFive(L.Callback):
        def __init__(self) -> None:
            self.module = None

        def on_train_start(self, trainer, pl_module) -> None:
            self.module = pl_module

        def wants_batch_end(self) -> bool:
            return self.module.iteration == 5

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if pl_module.iteration == 5:
                trainer.should_stop = True

    from ganlab.app.build import build_trainer

    cfg = make_cfg("train.iterations=40", "train.log_every_n_iterations=20",
                   "metrics.every_n_iterations=0", "~callbacks.checkpoint",
                   "train.iterations_per_batch=10")
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, module)
    trainer.callbacks.append(StopAtFive())
    trainer.fit(module, datamodule=datamodule)
    assert module.iteration == 5


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_iterations_per_batch_is_one_line(make_cfg, bad: int) -> None:
    cfg = make_cfg(f"train.iterations_per_batch={bad}")
    with pytest.raises(GanlabError, match="train.iterations_per_batch must be a positive "
                                          f"integer; got {bad}"):
        build_module(cfg, build_datamodule(cfg))
