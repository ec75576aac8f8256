"""Helpers of the model families' unit tests: SGD players, a training context, snapshots of
the networks, and the check that a phase moved its players by exactly one SGD step on the
gradient of a hand-written cost (tests/families/)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganlab.app.train import train
from ganlab.core.family import Family, TrainContext

LR = 0.1


def sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=LR)


def context(family: Family, noise_seed: int = 3) -> TrainContext:
    """A one-process context with the family's optimizers and a noise generator of
    ``noise_seed``."""
    nets = family.networks()
    optimizers = {name: factory([p for role in roles for p in nets[role].parameters()])
                  for name, (factory, roles) in family.optimizers().items()}
    return TrainContext(iteration=0, total_iterations=10, optimizers=optimizers,
                        backward=lambda c: c.backward(), noise=torch.Generator().manual_seed(
                            noise_seed))


def snapshot(family: Family) -> dict[str, dict[str, Tensor]]:
    return {role: {k: v.detach().clone() for k, v in net.state_dict().items()}
            for role, net in family.networks().items()}


def restored(before: dict[str, dict[str, Tensor]], family: Family) -> dict[str, nn.Module]:
    """Copies of the family's networks with the weights of ``before``."""
    nets = {role: copy.deepcopy(net) for role, net in family.networks().items()}
    for role, net in nets.items():
        net.load_state_dict(before[role])
    return nets


def assert_unchanged(before: dict[str, dict[str, Tensor]], family: Family, roles: list[str]
                     ) -> None:
    for role in roles:
        for k, v in family.networks()[role].state_dict().items():
            assert torch.equal(v, before[role][k]), f"{role}.{k} changed"


def assert_sgd_step(before: dict[str, dict[str, Tensor]], family: Family,
                    grads: dict[str, dict[str, Tensor]]) -> None:
    """Every parameter of ``grads``' roles moved by exactly ``-LR * grad``."""
    for role, by_name in grads.items():
        params = dict(family.networks()[role].named_parameters())
        for name, grad in by_name.items():
            assert not torch.equal(params[name].detach(), before[role][name]), f"{role}.{name}"
            torch.testing.assert_close(params[name].detach(), before[role][name] - LR * grad,
                                       atol=1e-6, rtol=1e-5)


def hand_grads(cost: Callable[[dict[str, nn.Module]], Tensor], family: Family, roles: list[str]
               ) -> dict[str, dict[str, Tensor]]:
    """Gradients of ``cost`` (a function of copies of the networks) w.r.t. ``roles``."""
    nets = {role: copy.deepcopy(net) for role, net in family.networks().items()}
    named = [(role, name, p) for role in roles for name, p in nets[role].named_parameters()]
    grads = torch.autograd.grad(cost(nets), [p for _, _, p in named])
    out: dict[str, dict[str, Tensor]] = {role: {} for role in roles}
    for (role, name, _), g in zip(named, grads, strict=True):
        out[role][name] = g
    return out


# -- runs through ganlab-train's train() -------------------------------------------------------

def checkpoint_state(run: Path, name: str = "last.ckpt") -> dict[str, Tensor]:
    return torch.load(run / "checkpoints" / name, weights_only=True)["state_dict"]


def check_twenty_iterations(make_cfg: Callable[..., Any], tmp_path: Path, preset: str,
                            small: list[str], metric_names: set[str], roles: set[str]) -> dict:
    """A 20-iteration run of ``preset`` (small nets, a tiny untrained lab classifier, W&B
    offline): its family's metrics and the classifier FID, the pictures in the run folder and
    in W&B, the checkpoint's networks, and the W&B group and tags."""
    import wandb
    from test_presets_conditional import write_classifier

    write_classifier(tmp_path / "data" / "classifiers" / "mnist_offline.pt")
    cfg = make_cfg(f"experiment={preset}", *small, "train.iterations=20", "logger=wandb",
                   f"paths.data_dir={tmp_path / 'data'}", out=tmp_path / "run")
    try:
        metrics = train(cfg)
        run = wandb.run
        assert run is not None and run.offline and run.group == preset
        model = cfg.model._target_.rsplit(".", 1)[1].lower()
        assert {f"model={model}", "prior=normal"} <= set(run.tags)
        assert not any(t.startswith(("generator=", "loss=")) for t in run.tags)  # GAN's only
        summary = dict(run.summary)
        assert {f"val/{k}" for k in metric_names} <= set(summary), summary.keys()
        wandb_dir = Path(run.dir).parent
    finally:
        wandb.finish()
    assert metrics["iterations"] == 20
    assert metric_names | {"fid"} <= set(metrics)
    samples = tmp_path / "run" / "samples"
    kinds = ["codes", "prior_samples", "reconstructions", "samples"]
    assert sorted({p.name.rsplit("_", 1)[0] for p in samples.iterdir()}) == kinds
    # W&B's media: samples/<name>_<step>_<hash>.png, each picture at both evaluations.
    logged = [p.name.rsplit("_", 2)[0] for p in
              (wandb_dir / "files" / "media" / "images" / "samples").glob("*.png")]
    assert sorted(logged) == sorted(kinds * 2)
    assert {k.split(".")[0] for k in checkpoint_state(tmp_path / "run")} == roles
    return metrics


def check_resume(make_cfg: Callable[..., Any], tmp_path: Path, small: list[str]) -> None:
    """Resume from iteration 3 of a 6-iteration run is bit-exact; a checkpoint with one
    encoder weight changed is not (the control)."""
    keep = ["callbacks.checkpoint.every_n_iterations=3",
            "callbacks.checkpoint.keep_every_n_iterations=3"]
    full, resumed, perturbed = tmp_path / "full", tmp_path / "resumed", tmp_path / "perturbed"
    train(make_cfg(*small, *keep, "train.iterations=6", out=full))
    middle = full / "checkpoints" / "iter_3.ckpt"
    train(make_cfg(*small, "train.iterations=6", f"ckpt_path={middle}", out=resumed))
    a, b = checkpoint_state(full), checkpoint_state(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ckpt = torch.load(middle, weights_only=False)
    key = next(k for k in ckpt["state_dict"] if k.startswith("encoder.") and k.endswith("weight"))
    ckpt["state_dict"][key].view(-1)[0] += 0.5
    torch.save(ckpt, tmp_path / "changed.ckpt")
    train(make_cfg(*small, "train.iterations=6", f"ckpt_path={tmp_path / 'changed.ckpt'}",
                   out=perturbed))
    assert not torch.equal(a[key], checkpoint_state(perturbed)[key])
