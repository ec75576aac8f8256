"""Direct optimizer steps: taken on one device in 32-bit precision when no hook would see
them, counted in Lightning's global_step, and the same run as through Lightning's wrappers."""

from __future__ import annotations

import lightning as L
import torch

from ganlab.adapter.direct_steps import DirectOptimizer, direct_steps_apply
from ganlab.app.build import build_datamodule, build_module, build_trainer


class WatchesBackward(L.Callback):
    """Overrides a step hook: Lightning's own path must run so that it is called."""

    def __init__(self) -> None:
        self.calls = 0

    def on_after_backward(self, trainer, pl_module) -> None:
        self.calls += 1


def fit(make_cfg, tmp_path, name: str, *callbacks: L.Callback):
    cfg = make_cfg("train.iterations=12", "train.d_steps=2", "metrics.every_n_iterations=0",
                   "tricks=[ttur]", out=tmp_path / name)
    torch.manual_seed(cfg.seed)
    datamodule = build_datamodule(cfg)
    module = build_module(cfg, datamodule)
    trainer = build_trainer(cfg, module)
    trainer.callbacks.extend(callbacks)
    seen = []
    step = module.family.train_step
    module.family.train_step = lambda batch, ctx: seen.append(ctx) or step(batch, ctx)
    trainer.fit(module, datamodule=datamodule)
    return module, trainer, seen


def test_direct_steps_are_the_same_run_and_counted(make_cfg, tmp_path) -> None:
    direct, trainer, seen = fit(make_cfg, tmp_path, "direct")
    watcher = WatchesBackward()
    wrapped, wrapped_trainer, wrapped_seen = fit(make_cfg, tmp_path, "wrapped", watcher)
    assert all(isinstance(o, DirectOptimizer) for o in seen[0].optimizers.values())
    assert seen[0].backward is torch.Tensor.backward
    assert not any(isinstance(o, DirectOptimizer) for o in wrapped_seen[0].optimizers.values())
    assert watcher.calls == 12 * 3  # two D steps and a G step per iteration
    assert trainer.global_step == wrapped_trainer.global_step == 12 * 3
    a, b = direct.state_dict(), wrapped.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The optimizers' own state (Adam's moments, TTUR's learning rates) too.
    for o, p in zip(trainer.optimizers, wrapped_trainer.optimizers, strict=True):
        assert o.param_groups[0]["lr"] == p.param_groups[0]["lr"]
        for s, t in zip(o.state.values(), p.state.values(), strict=True):
            assert all(torch.equal(s[k], t[k]) for k in s)


def test_when_direct_steps_apply(make_cfg) -> None:
    cfg = make_cfg()
    module = build_module(cfg, build_datamodule(cfg))
    assert not direct_steps_apply(None, module)
    trainer = build_trainer(cfg, module)
    assert direct_steps_apply(trainer, module)
    trainer.callbacks.append(WatchesBackward())
    assert not direct_steps_apply(trainer, module)
    assert not direct_steps_apply(build_trainer(make_cfg("trainer.precision=bf16-mixed"), module),
                                  module)
