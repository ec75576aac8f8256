"""train.compile: the networks run as torch.compile graphs; the run's losses match the eager
run's within float tolerance over 50 iterations, and resuming a compiled run is bit-exact."""

from __future__ import annotations

import pytest
import torch

from ganlab.app.build import build_datamodule, build_module
from ganlab.app.train import train
from ganlab.core.errors import GanlabError

#: A small toy MLP GAN (the default experiment's kind), logging every 5 iterations.
SMALL = ["generator.net.hidden_dim=16", "discriminator.net.hidden_dim=16",
         "train.batch_size=64", "train.log_every_n_iterations=5", "metrics.every_n_iterations=0",
         "metrics.num_samples=100", "~callbacks.samples"]
#: Compiled and eager kernels may sum in another order: float32 round-off, grown over 50
#: iterations of training.
TOL = {"rtol": 1e-4, "atol": 1e-5}


def state(run) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def logged(run) -> dict[str, list[float]]:
    import csv

    rows = list(csv.DictReader(open(next(run.rglob("metrics.csv")))))
    return {k: [float(r[k]) for r in rows if r.get(k)] for k in ("train/d_loss", "train/g_loss")}


def test_compiled_run_matches_the_eager_one_and_resumes_exactly(make_cfg, tmp_path) -> None:
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    train(make_cfg(*SMALL, "logger=csv", "train.iterations=50", out=eager))
    train(make_cfg(*SMALL, "logger=csv", "train.iterations=50", "train.compile=true",
                   "callbacks.checkpoint.every_n_iterations=25",
                   "callbacks.checkpoint.keep_every_n_iterations=25", out=compiled))
    a, b = logged(eager), logged(compiled)
    assert len(a["train/d_loss"]) == len(b["train/d_loss"]) == 10
    for key in a:
        torch.testing.assert_close(torch.tensor(b[key]), torch.tensor(a[key]), **TOL)
    sa, sb = state(eager), state(compiled)
    assert sa.keys() == sb.keys()  # the eager run's parameter names
    for key in sa:
        torch.testing.assert_close(sb[key], sa[key], **TOL)
    # Resumed from iteration 25 of the compiled run: bit for bit its last 25 iterations.
    resumed = tmp_path / "resumed"
    train(make_cfg(*SMALL, "train.iterations=50", "train.compile=true",
                   f"ckpt_path={compiled / 'checkpoints' / 'iter_25.ckpt'}", out=resumed))
    sr = state(resumed)
    assert all(torch.equal(sr[k], sb[k]) for k in sb)


def test_the_networks_are_compiled_in_place(make_cfg) -> None:
    cfg = make_cfg(*SMALL, "train.compile=true")
    module = build_module(cfg, build_datamodule(cfg))
    for net in module.family.networks().values():
        assert net._compiled_call_impl is not None
    plain = build_module(make_cfg(*SMALL), build_datamodule(cfg))
    assert all(net._compiled_call_impl is None for net in plain.family.networks().values())


def test_a_bad_compile_mode_is_one_line(make_cfg) -> None:
    cfg = make_cfg("train.compile=true", "train.compile_mode=fast")
    with pytest.raises(GanlabError, match="train.compile_mode must be one of default, "
                                          "reduce-overhead, max-autotune; got 'fast'"):
        build_module(cfg, build_datamodule(cfg))
