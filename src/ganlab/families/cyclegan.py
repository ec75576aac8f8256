"""CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks"; GAN_SPEC §7).

Players: translators ``G: X → Y`` and ``F: Y → X`` and discriminators ``D_Y`` (on Y) and ``D_X``
(on X), trained on unpaired minibatches ``x`` (domain X) and ``y`` (domain Y). The costs are the
paper's least-squares form (§4, "Training details"; Mao et al. 2017) on D's raw patch outputs,
each mean over the batch and the patches:

- ``J_GF = E (D_Y(G(x)) - 1)² + E (D_X(F(y)) - 1)² + λ L_cyc + λ_id L_id`` (eqs. 2, 3 and 1),
  ``L_cyc = E |F(G(x)) - x|₁ + E |G(F(y)) - y|₁`` (eq. 2; means over pixels),
  ``L_id = E |G(y) - y|₁ + E |F(x) - x|₁`` (§5.2; 0.5λ in the paper where it is used);
- ``J_DY = 1/2 E (D_Y(y) - 1)² + 1/2 E D_Y(ŷ)²`` and likewise ``J_DX`` on ``x`` and ``x̂``,
  where ``ŷ``, ``x̂`` are G's and F's fakes passed through a history of 50 generated images
  (:class:`ImagePool`, Shrivastava et al. 2017). ``J_D`` is :class:`ganlab.losses.LSGAN`'s
  ``d_loss`` (the ½ that slows D, as the authors' code); each generator term is twice
  ``LSGAN.g_loss``.

One iteration (= one call of :meth:`CycleGAN.train_step`) is the authors' ``optimize_parameters``:
the optimizer ``generators`` (G and F) takes one step on ``J_GF``; then ``discriminator_y`` on
``J_DY`` and ``discriminator_x`` on ``J_DX``, the fakes being those of the generator phase
(before its step) as in the authors' code. ``model.cycle_weight=0`` is the paper's "GAN alone"
ablation. Samples are ``G(x)`` for training images ``x``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.eval_mode import evaluating
from ganlab.core.family import Batch, Family, TrainContext
from ganlab.core.players import OptimizerFactory
from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.data.images import to_unit_range
from ganlab.losses import LSGAN

OPTIMIZERS = ("generators", "discriminator_y", "discriminator_x")


class ImagePool:
    """The history of generated images that D is trained on (Shrivastava et al. 2017; the
    authors' ``ImagePool``): while fewer than ``size`` are stored, each new image is stored and
    returned; then each is, with probability 1/2, swapped with a uniformly chosen stored image
    (the stored one is returned), else returned as it is. Images are handled one after the
    other, so a batch may get back an image stored earlier in the same batch.

    Its random choices come from the run's noise generator: each query of ``n`` images draws
    ``n`` uniforms, then ``n`` indices in ``[0, size)`` (all of them, whether used or not).
    """

    def __init__(self, size: int = 50) -> None:
        if isinstance(size, bool) or int(size) != size or size < 0:
            raise GanlabError(f"model.pool_size must be an integer >= 0; got {size}")
        self.size = int(size)
        self.images: list[Tensor] = []

    def query(self, images: Tensor, noise: torch.Generator) -> Tensor:
        """The images D sees for the new fakes ``images`` (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        n = images.shape[0]
        u = torch.rand(n, generator=noise, device=noise.device).tolist()
        ids = torch.randint(self.size, (n,), generator=noise, device=noise.device).tolist()
        out = []
        for image, p, k in zip(images, u, ids, strict=True):
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif p > 0.5:
                out.append(self.images[k].to(image.device))
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        """The stored images (on the CPU; ``None`` while empty)."""
        return {"size": self.size,
                "images": torch.stack([im.cpu() for im in self.images]) if self.images else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["size"]) != self.size:
            raise GanlabError(f"the checkpoint's image pool holds {state['size']} images but "
                              f"model.pool_size is {self.size}")
        images = state["images"]
        self.images = [] if images is None else [im.clone() for im in images]


def l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean over the batch and the pixels of ``|a - b|``."""
    return (a - b).abs().mean()


class CycleGAN(Family):
    """``model=cyclegan``.

    Args:
        generator_xy: ``G``, images of X → images of Y.
        generator_yx: ``F``, images of Y → images of X.
        discriminator_y: ``D_Y``, images of Y → raw patch scores.
        discriminator_x: ``D_X``, images of X → raw patch scores.
        optimizers: factories of :data:`OPTIMIZERS`.
        cycle_weight: λ (10 in the paper; 0: no cycle loss).
        identity_weight: ``λ_id`` (0: no identity loss; 0.5λ in the paper where it is used).
        pool_size: images in each D's history (50 in the paper; 0: D sees the newest fakes).
        x_images: uint8 training images of X, drawn by :meth:`sample_latent`.
        classifier: the lab classifier of the digits (a ``ClassifierExtractor``) judging
            translations in :meth:`metrics`; ``None``: no accuracies.
        inverted: Y's colours are X's inverted (the classifier reads ``-G(x)``).
        num_pictures: held-out images per picture (rows of 10).
    """

    name: ClassVar[str] = "cyclegan"
    #: ``model.metrics``: it measures its own translations (:meth:`metrics`).
    provides = frozenset({"model.metrics"})

    def __init__(
        self,
        generator_xy: nn.Module,
        generator_yx: nn.Module,
        discriminator_y: nn.Module,
        discriminator_x: nn.Module,
        optimizers: dict[str, OptimizerFactory],
        cycle_weight: float = 10.0,
        identity_weight: float = 0.0,
        pool_size: int = 50,
        x_images: Tensor | None = None,
        classifier: Any = None,
        inverted: bool = False,
        num_pictures: int = 20,
    ) -> None:
        missing = set(OPTIMIZERS) - set(optimizers)
        if missing:
            raise GanlabError(f"model=cyclegan: no optimizer for {', '.join(sorted(missing))}")
        for key, value in (("cycle_weight", cycle_weight), ("identity_weight", identity_weight)):
            if not float(value) >= 0:
                raise GanlabError(f"model.{key} must be >= 0; got {value}")
        self.generator_xy, self.generator_yx = generator_xy, generator_yx
        self.discriminator_y, self.discriminator_x = discriminator_y, discriminator_x
        self.factories = dict(optimizers)
        self.cycle_weight, self.identity_weight = float(cycle_weight), float(identity_weight)
        self.pool_y, self.pool_x = ImagePool(pool_size), ImagePool(pool_size)
        self.x_images = x_images
        self.classifier = classifier
        self.inverted = bool(inverted)
        self.num_pictures = int(num_pictures)
        self.loss = LSGAN(a=0.0, b=1.0, c=1.0)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Callable[..., Any]) -> CycleGAN:
        """The family of ``cfg.model`` for unpaired data (:mod:`ganlab.data.unpaired`)."""
        m = cfg.model
        if getattr(datamodule, "y_images", None) is None:
            raise GanlabError(f"model=cyclegan needs unpaired data (data=unpaired_digits or "
                              f"data=horse2zebra); {type(datamodule).__name__} has one domain")
        shape = list(datamodule.data_shape)
        if list(datamodule.y_images.shape[1:]) != shape:
            raise GanlabError(f"model=cyclegan: the domains' images differ in shape "
                              f"({shape} and {list(datamodule.y_images.shape[1:])})")
        classifier = None
        if m.get("classifier"):
            from ganlab.metrics.classifier import load_classifier_extractor

            classifier = load_classifier_extractor(m.classifier)
        return cls(
            build(m.generator, "model.generator", data_shape=shape),
            build(m.generator, "model.generator", data_shape=shape),
            build(m.discriminator, "model.discriminator", data_shape=shape),
            build(m.discriminator, "model.discriminator", data_shape=shape),
            {name: build(node, f"model.optimizers.{name}") for name, node in m.optimizers.items()},
            cycle_weight=m.cycle_weight, identity_weight=m.identity_weight,
            pool_size=m.pool_size, x_images=datamodule.images, classifier=classifier,
            inverted=bool(getattr(datamodule, "invert", False)),
            num_pictures=int(m.get("num_pictures", 20)),
        )

    # -- the family interface -------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"generator_xy": self.generator_xy, "generator_yx": self.generator_yx,
                "discriminator_y": self.discriminator_y, "discriminator_x": self.discriminator_x}

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        return {
            "generators": (self.factories["generators"], ["generator_xy", "generator_yx"]),
            "discriminator_y": (self.factories["discriminator_y"], ["discriminator_y"]),
            "discriminator_x": (self.factories["discriminator_x"], ["discriminator_x"]),
        }

    @property
    def evaluated(self) -> nn.Module:
        return self.generator_xy

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` training images of X (uniformly, with repeats) in [-1, 1]: G's inputs."""
        if self.x_images is None:
            raise GanlabError("model=cyclegan draws G's inputs from the data's X images; "
                              "none were given")
        idx = torch.randint(len(self.x_images), (n,), generator=generator,
                            device=generator.device).cpu()
        return to_unit_range(self.x_images[idx]).to(generator.device)

    # -- one iteration --------------------------------------------------------------------
    def adversarial(self, scores: Tensor) -> Tensor:
        """A translator's least-squares cost ``E (D(fake) - 1)²`` (twice ``LSGAN.g_loss``)."""
        return 2 * self.loss.g_loss(scores)

    def generator_phase(self, x: Tensor, y: Tensor, ctx: TrainContext
                        ) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """One step of G and F on ``J_GF``; returns the logged terms and the (detached) fakes
        ``G(x)``, ``F(y)`` of the weights before the step."""
        fake_y, fake_x = self.generator_xy(x), self.generator_yx(y)
        adv_g = self.adversarial(self.discriminator_y(fake_y))
        adv_f = self.adversarial(self.discriminator_x(fake_x))
        cost = adv_g + adv_f
        out = {"adv_g": adv_g.detach(), "adv_f": adv_f.detach()}
        if self.cycle_weight > 0:
            cycle_x = l1(self.generator_yx(fake_y), x)
            cycle_y = l1(self.generator_xy(fake_x), y)
            cost = cost + self.cycle_weight * (cycle_x + cycle_y)
            out.update(cycle_x=cycle_x.detach(), cycle_y=cycle_y.detach())
        if self.identity_weight > 0:
            identity = l1(self.generator_xy(y), y) + l1(self.generator_yx(x), x)
            cost = cost + self.identity_weight * identity
            out["identity"] = identity.detach()
        ctx.update("generators", cost)
        out["g_cost"] = cost.detach()
        return out, fake_y.detach(), fake_x.detach()

    def discriminator_phase(self, name: str, real: Tensor, fake: Tensor, ctx: TrainContext
                            ) -> Tensor:
        """One step of ``name`` (``discriminator_y`` or ``discriminator_x``) on ``J_D`` of
        ``real`` against the pool's answer to ``fake``."""
        net, pool = (self.discriminator_y, self.pool_y) if name == "discriminator_y" else \
            (self.discriminator_x, self.pool_x)
        history = pool.query(fake, ctx.noise)
        cost = self.loss.d_loss(net(real), net(history))
        ctx.update(name, cost)
        return cost.detach()

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """The generators' step, then ``D_Y``'s and ``D_X``'s, on ``batch``'s ``(x, y)``."""
        xs, ys = batch
        x, y = xs[0], ys[0]
        if x.dim() != 4 or y.shape != x.shape:
            raise GanlabError(f"model=cyclegan takes image minibatches x and y of one shape; got "
                              f"{tuple(x.shape)} and {tuple(y.shape)}")
        out, fake_y, fake_x = self.generator_phase(x, y, ctx)
        out["d_y_loss"] = self.discriminator_phase("discriminator_y", y, fake_y, ctx)
        out["d_x_loss"] = self.discriminator_phase("discriminator_x", x, fake_x, ctx)
        return out

    # -- evaluation -----------------------------------------------------------------------
    @staticmethod
    def held_out(images: Tensor, n: int) -> Tensor:
        """Indices of ``n`` (at most all) of ``images``, chosen by :data:`RECONSTRUCTION_SEED`."""
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(
            RECONSTRUCTION_SEED))
        return order[: min(n, len(images))]

    @torch.no_grad()
    def translate(self, x: Tensor, y: Tensor, device: torch.device | str,
                  batch_size: int = 500) -> dict[str, Tensor]:
        """``G(x)``, ``F(G(x))``, ``F(y)``, ``G(F(y))`` in eval mode (on the CPU)."""
        out: dict[str, list[Tensor]] = {"gx": [], "fgx": [], "fy": [], "gfy": []}
        with evaluating(self.generator_xy, self.generator_yx):
            for part in x.split(batch_size):
                gx = self.generator_xy(part.to(device))
                out["gx"].append(gx.cpu())
                out["fgx"].append(self.generator_yx(gx).cpu())
            for part in y.split(batch_size):
                fy = self.generator_yx(part.to(device))
                out["fy"].append(fy.cpu())
                out["gfy"].append(self.generator_xy(fy).cpu())
        return {k: torch.cat(v) for k, v in out.items()}

    @torch.no_grad()
    def accuracy(self, images: Tensor, labels: Tensor, device: torch.device | str) -> float:
        """Share of ``images`` (in [-1, 1]) the classifier reads as ``labels``."""
        self.classifier.to(device)
        digits = torch.cat([self.classifier.digits(part.to(device)).cpu()[:, 0]
                            for part in images.split(500)])
        return float((digits == labels.cpu()).float().mean())

    def metrics(self, datamodule: Any, num_samples: int, device: torch.device | str
                ) -> dict[str, float]:
        """On up to ``num_samples`` held-out images of each domain (:meth:`protocol`):
        ``cycle_error_x`` = mean ``|F(G(x)) - x|``, ``cycle_error_y`` = mean ``|G(F(y)) - y|``;
        with true pairs ``y = true_map(x)``: ``true_error_xy`` = mean ``|G(x) - y|`` and
        ``true_error_yx`` = mean ``|F(y) - x|``; with labels and a classifier:
        ``accuracy_yx`` (classifier on ``F(y)``), ``accuracy_xy`` (on ``G(x)``, colours
        inverted back when Y is inverted: the thick digits), and the same classifier on the
        truth, ``accuracy_x`` (on ``x``) and ``accuracy_true_xy`` (on un-inverted ``y``)."""
        hx, hy = datamodule.held_out_x, datamodule.held_out_y
        paired = bool(getattr(datamodule, "held_out_paired", False))
        ix = self.held_out(hx, num_samples)
        iy = ix if paired else self.held_out(hy, num_samples)
        x, y = to_unit_range(hx[ix]), to_unit_range(hy[iy])
        t = self.translate(x, y, device)
        values = {"cycle_error_x": float(l1(t["fgx"], x)),
                  "cycle_error_y": float(l1(t["gfy"], y))}
        if paired:
            values["true_error_xy"] = float(l1(t["gx"], y))
            values["true_error_yx"] = float(l1(t["fy"], x))
            labels = getattr(datamodule, "held_out_labels", None)
            if self.classifier is not None and labels is not None:
                labels = labels[ix]
                sign = -1.0 if self.inverted else 1.0
                values["accuracy_xy"] = self.accuracy(sign * t["gx"], labels, device)
                values["accuracy_yx"] = self.accuracy(t["fy"], labels, device)
                values["accuracy_true_xy"] = self.accuracy(sign * y, labels, device)
                values["accuracy_x"] = self.accuracy(x, labels, device)
        self._last = {"num_held_out_x": len(ix), "num_held_out_y": len(iy),
                      "held_out_paired": paired,
                      "mapping": getattr(datamodule, "describe", lambda: "unknown")()}
        return values

    def protocol(self) -> dict[str, Any]:
        """How :meth:`metrics` measures (with the counts of its last call)."""
        protocol: dict[str, Any] = {
            "errors": "mean over held-out images and pixels (in [-1, 1]) of |a - b|",
            "true_error_yx": "against the original digit x of y = true_map(x) (the mapping "
                             "thickens strokes, which cannot be undone)",
            "accuracy_xy": "classifier on -G(x) (colours inverted back) when Y is inverted, "
                           "else on G(x): it reads thick digits; accuracy_true_xy is the same "
                           "on the true thick digits",
            "held_out_seed": RECONSTRUCTION_SEED,
            "cycle_weight": self.cycle_weight,
            "identity_weight": self.identity_weight,
            "pool_size": self.pool_y.size,
            **getattr(self, "_last", {}),
        }
        if self.classifier is not None:
            protocol["classifier_test_accuracy"] = self.classifier.test_accuracy
            protocol["classifier_hash"] = self.classifier.weights_hash()
        return protocol

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """``translation_xy``: blocks of three rows of (up to) 10 held-out images, x | G(x) |
        F(G(x)); ``translation_yx``: y | F(y) | G(F(y)) (images in [-1, 1])."""
        out = {}
        for name, held, first, second in (
                ("translation_xy", datamodule.held_out_x, self.generator_xy, self.generator_yx),
                ("translation_yx", datamodule.held_out_y, self.generator_yx, self.generator_xy)):
            cols = min(10, len(held))
            rows = max(min(self.num_pictures, len(held)) // cols, 1)
            real = to_unit_range(held[self.held_out(held, rows * cols)]).to(sampler.device)
            with torch.no_grad(), evaluating(first, second):
                there = first(real)
                back = second(there)
            grid = torch.stack([t.view(rows, cols, *t.shape[1:]) for t in (real, there, back)], 1)
            out[name] = (grid.reshape(-1, *real.shape[1:]).cpu(), cols)
        return out

    def state_dict(self) -> dict[str, Any]:
        """The two image pools."""
        return {"pool_y": self.pool_y.state_dict(), "pool_x": self.pool_x.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.pool_y.load_state_dict(state["pool_y"])
            self.pool_x.load_state_dict(state["pool_x"])

    def tags(self) -> list[str]:
        return [*super().tags(), f"cycle_weight={self.cycle_weight:g}"]


__all__ = ["OPTIMIZERS", "CycleGAN", "ImagePool"]
