"""Helpers of the model families' tests (tests/families/): SGD players, a training context,
snapshots of the networks, the check that a phase moved its players by exactly one SGD step on
the gradient of a hand-written cost, a saved and resumed in-process state, and the runs through
ganlab-train's ``train()`` (20 iterations; a bit-exact resume with a perturbed control)."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch import Tensor, nn

from ganlab.app.cli import config_dir
from ganlab.app.train import train
from ganlab.core.family import Family, TrainContext

LR = 0.1

#: Weights by role: ``role -> name -> tensor``.
Weights = dict[str, dict[str, Tensor]]
#: A family, or networks by role (e.g. a family's networks and a fixed one it holds).
Nets = Family | Mapping[str, nn.Module]


def sgd(params: Any) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=LR)


def softplus(t: Tensor) -> Tensor:
    """``log(1 + e^t)`` written out (the logistic GAN costs by hand)."""
    return torch.log1p(torch.exp(t))


def log_bernoulli(logits: Tensor, x: Tensor) -> Tensor:
    """Per image: sum over pixels of t log σ(l) + (1 - t) log(1 - σ(l)), t = (x + 1) / 2 (the
    Bernoulli decoder's log-likelihood by hand)."""
    t, p = (x + 1) / 2, torch.sigmoid(logits)
    return (t * torch.log(p) + (1 - t) * torch.log(1 - p)).flatten(1).sum(1)


def networks(of: Nets) -> Mapping[str, nn.Module]:
    return of.networks() if isinstance(of, Family) else of


def context(family: Family, noise_seed: int = 3) -> TrainContext:
    """A one-process context with the family's optimizers and a noise generator of
    ``noise_seed``."""
    nets = family.networks()
    optimizers = {name: factory([p for role in roles for p in nets[role].parameters()])
                  for name, (factory, roles) in family.optimizers().items()}
    return TrainContext(iteration=0, total_iterations=10, optimizers=optimizers,
                        backward=lambda c: c.backward(), noise=torch.Generator().manual_seed(
                            noise_seed))


def snapshot(of: Nets, buffers: bool = True) -> Weights:
    """Clones of every network's state (its parameters alone with ``buffers=False``)."""
    return {role: {k: v.detach().clone() for k, v in
                   (net.state_dict() if buffers else dict(net.named_parameters())).items()}
            for role, net in networks(of).items()}


def copies(family: Family) -> dict[str, nn.Module]:
    return {role: copy.deepcopy(net) for role, net in family.networks().items()}


def restored(before: Weights, family: Family) -> dict[str, nn.Module]:
    """Copies of the family's networks with the weights of ``before``."""
    nets = copies(family)
    for role, net in nets.items():
        net.load_state_dict(before[role])
    return nets


def assert_unchanged(before: Weights, of: Nets, roles: Sequence[str], buffers: bool = True
                     ) -> None:
    """The networks of ``roles`` hold the weights of ``before`` (their parameters alone with
    ``buffers=False``, e.g. when a phase runs a network in train mode without stepping it)."""
    nets = networks(of)
    for role in roles:
        params = dict(nets[role].named_parameters())
        for k, v in nets[role].state_dict().items():
            if buffers or k in params:
                assert torch.equal(v, before[role][k]), f"{role}.{k} changed"


def assert_sgd_step(before: Weights, of: Nets, grads: Weights, *, atol: float = 1e-6,
                    rtol: float = 1e-5, moved: Literal["each", "most", "any"] = "each") -> None:
    """Every parameter of ``grads``' roles moved by exactly ``-LR * grad`` (to ``atol``,
    ``rtol``); ``moved``: of each role, each parameter changed, more than half of them, or
    at least one."""
    nets = networks(of)
    for role, by_name in grads.items():
        params = dict(nets[role].named_parameters())
        changed = 0
        for name, grad in by_name.items():
            now = params[name].detach()
            changed += not torch.equal(now, before[role][name])
            if moved == "each":
                assert not torch.equal(now, before[role][name]), f"{role}.{name}"
            torch.testing.assert_close(now, before[role][name] - LR * grad, atol=atol, rtol=rtol)
        if moved == "most":
            assert changed > len(by_name) // 2, role
        elif moved == "any":
            assert changed > 0, role


def hand_grads_and_cost(cost: Callable[[dict[str, nn.Module]], Tensor], family: Family,
                        roles: Sequence[str], allow_unused: bool = False
                        ) -> tuple[Weights, Tensor]:
    """Gradients of ``cost`` (a function of copies of the networks) w.r.t. the parameters of
    ``roles`` (zeros for those it does not reach, with ``allow_unused``), and the cost."""
    nets = copies(family)
    named = [(role, name, p) for role in roles for name, p in nets[role].named_parameters()]
    value = cost(nets)
    grads = torch.autograd.grad(value, [p for _, _, p in named], allow_unused=allow_unused)
    out: Weights = {role: {} for role in roles}
    for (role, name, p), g in zip(named, grads, strict=True):
        out[role][name] = torch.zeros_like(p) if g is None else g
    return out, value.detach()


def hand_grads(cost: Callable[[dict[str, nn.Module]], Tensor], family: Family,
               roles: Sequence[str], allow_unused: bool = False) -> Weights:
    """Gradients of ``cost`` (a function of copies of the networks) w.r.t. ``roles``."""
    return hand_grads_and_cost(cost, family, roles, allow_unused)[0]


# -- building from the config -----------------------------------------------------------------

def compose_preset(preset: str, overrides: Sequence[str] = ()) -> Any:
    """The config of ``experiment=<preset>`` and ``overrides`` (to build a family from)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return compose(config_name="train", overrides=[f"experiment={preset}", *overrides])


def fake_images(n_train: int = 60, n_held: int = 20, shape: tuple[int, ...] = (1, 4, 4)
                ) -> SimpleNamespace:
    """A stand-in for an image datamodule with held-out images (the autoencoders')."""
    g = torch.Generator().manual_seed(5)
    return SimpleNamespace(
        data_shape=shape, num_classes=10, held_out=0.25,
        labels=torch.arange(n_train) % 10,
        held_out_images=torch.randint(0, 256, (n_held, *shape), generator=g, dtype=torch.uint8),
        held_out_labels=torch.arange(n_held) % 10,
    )


def check_autoencoder_pictures(family: Family, dm: SimpleNamespace,
                               decode: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """An autoencoder's pictures of :func:`fake_images`' 20 held-out images: the code scatter
    (an RGB uint8 image), 100 prior samples ``decode``-d in rows of 10, and the reconstructions
    grid (40 images in rows of 10; see :func:`assert_real_then_reconstructions`). Returns the
    samples and the grid."""
    sampler = SimpleNamespace(device=torch.device("cpu"),
                              generate_from=lambda z: decode(z).detach())
    pictures = family.pictures(sampler, dm)
    assert set(pictures) == {"codes", "prior_samples", "reconstructions"}
    scatter = pictures["codes"]
    assert isinstance(scatter, np.ndarray) and scatter.dtype == np.uint8
    assert scatter.ndim == 3 and scatter.shape[2] == 3 and scatter.std() > 0
    samples, nrow = pictures["prior_samples"]
    assert samples.shape == (100, 1, 4, 4) and nrow == 10
    grid, nrow = pictures["reconstructions"]
    assert grid.shape == (40, 1, 4, 4) and nrow == 10
    return samples, grid


def assert_real_then_reconstructions(grid: Tensor, real: Tensor, rec: Tensor) -> None:
    """20 held-out images: two rows of 10 real, each followed by its reconstructions."""
    assert torch.equal(grid[:10], real[:10]) and torch.equal(grid[20:30], real[10:])
    torch.testing.assert_close(grid[10:20], rec[:10])
    torch.testing.assert_close(grid[30:], rec[10:])


# -- an in-process run saved and resumed --------------------------------------------------------

def saved_state(family: Family, ctx: TrainContext) -> dict[str, Any]:
    """What a checkpoint holds of a run in progress (networks, optimizers, the noise
    generator, the family's own state), through ``torch.save`` and ``torch.load``."""
    buffer = io.BytesIO()
    torch.save({"networks": {r: n.state_dict() for r, n in family.networks().items()},
                "optimizers": {k: o.state_dict() for k, o in ctx.optimizers.items()},
                "noise": ctx.noise.get_state(), "family": family.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def resumed_context(family: Family, saved: dict[str, Any],
                    family_state: dict[str, Any] | None = None) -> TrainContext:
    """Load ``saved`` into ``family`` (``family_state`` in place of the saved one, if given)
    and return a context with its optimizers and noise generator (seeded otherwise: the
    state must come from ``saved``)."""
    for role, net in family.networks().items():
        net.load_state_dict(saved["networks"][role])
    family.load_state_dict(saved["family"] if family_state is None else family_state)
    ctx = context(family, noise_seed=0)
    for k, o in ctx.optimizers.items():
        o.load_state_dict(saved["optimizers"][k])
    ctx.noise.set_state(saved["noise"])
    return ctx


def same_outputs(a: Sequence[dict[str, Tensor]], b: Sequence[dict[str, Tensor]]) -> bool:
    """Two runs' step outputs are equal to the bit."""
    return all(torch.equal(p[k], q[k]) for p, q in zip(a, b, strict=True) for k in p)


def check_saved_state_resumes(make: Callable[..., Family],
                              run: Callable[[Family, TrainContext, range], list[dict[str, Tensor]]],
                              global_seed: int | None = None) -> tuple[Family, Family]:
    """Four steps straight equal two steps, :func:`saved_state`, and two more steps of a family
    made with other initial weights (``make(seed=99)``) resumed from it (after
    ``torch.manual_seed(global_seed)``, if given: the global stream plays no part). Returns
    the straight and the resumed family."""
    straight = make()
    expected = run(straight, context(straight), range(4))
    first = make()
    ctx1 = context(first)
    run(first, ctx1, range(2))
    saved = saved_state(first, ctx1)
    resumed = make(seed=99)  # other initial weights: everything must come from the state
    ctx2 = resumed_context(resumed, saved)
    if global_seed is not None:
        torch.manual_seed(global_seed)
    assert same_outputs(expected[2:], run(resumed, ctx2, range(2, 4)))
    return straight, resumed


# -- runs through ganlab-train's train() -------------------------------------------------------

def load_checkpoint(run: Path, name: str = "last.ckpt") -> dict[str, Any]:
    return torch.load(run / "checkpoints" / name, weights_only=True)


def checkpoint_state(run: Path, name: str = "last.ckpt") -> dict[str, Tensor]:
    return load_checkpoint(run, name)["state_dict"]


def checkpoint_roles(run: Path) -> set[str]:
    """The roles of the networks in the run's last checkpoint."""
    return {k.split(".")[0] for k in checkpoint_state(run)}


def picture_kinds(run: Path) -> list[str]:
    """The kind of each picture the run wrote (``samples/<kind>_<iteration>.png``), sorted."""
    return sorted(p.name.rsplit("_", 1)[0] for p in (run / "samples").iterdir())


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
    kinds = ["codes", "prior_samples", "reconstructions", "samples"]
    assert sorted(set(picture_kinds(tmp_path / "run"))) == kinds
    # W&B's media: samples/<name>_<step>_<hash>.png, each picture at both evaluations.
    logged = [p.name.rsplit("_", 2)[0] for p in
              (wandb_dir / "files" / "media" / "images" / "samples").glob("*.png")]
    assert sorted(logged) == sorted(kinds * 2)
    assert checkpoint_roles(tmp_path / "run") == roles
    return metrics


def check_resume(make_cfg: Callable[..., Any], tmp_path: Path, small: list[str], role: str
                 ) -> tuple[dict[str, Tensor], Path]:
    """Resume from iteration 3 of a 6-iteration run is bit-exact; a checkpoint with one weight
    of ``role`` changed is not (the control: a resume that ignored it would match). Returns the
    full run's last weights and its iteration-3 checkpoint, for a family's own controls."""
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
    key = next(k for k in ckpt["state_dict"] if k.startswith(f"{role}.") and k.endswith("weight"))
    ckpt["state_dict"][key].view(-1)[0] += 0.5
    torch.save(ckpt, tmp_path / "changed.ckpt")
    train(make_cfg(*small, "train.iterations=6", f"ckpt_path={tmp_path / 'changed.ckpt'}",
                   out=perturbed))
    assert not torch.equal(a[key], checkpoint_state(perturbed)[key])
    return a, middle
