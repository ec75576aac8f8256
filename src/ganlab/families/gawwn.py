"""GAWWN, "what and where" (Reed, Akata, Mohan, Tenka, Schiele & Lee 2016, "Learning What and
Where to Draw"; GAN_SPEC §7), on what-where digits (:mod:`ganlab.data.what_where`).

Players: ``G(z, c)`` and ``D(x, c)`` (:mod:`ganlab.nets.gawwn`), ``c = (y, box)``: the class
embedding replicated spatially inside the box is concatenated to both players' feature maps,
and a spatial transformer maps a local pathway between the box's frame and the canvas (the
paper's bounding-box pathway, §3.1, Fig. 3), so the digit must be drawn there. One iteration
(= one call of :meth:`GAWWN.train_step`, on one real minibatch ``(x, c)``):

1. the optimizer ``discriminator`` takes one step on
   ``J_D = 1/2 E softplus(-D(x, c)) + 1/2 E softplus(D(G(z, c), c))`` (the real canvas with
   its condition against a fake with the same condition; ``z ~ N(0, I)``);
2. the optimizer ``generator`` takes one step on ``J_G = 1/2 E softplus(-D(G(z', c), c))``
   (non-saturating, a fresh ``z'``),

both costs from :mod:`ganlab.losses` (non-saturating by default, ``model.loss``), the noise
from the run's checkpointed generator (exact resume). ``model.where=false`` is the class-only
baseline: the same networks with the box map spread over the whole canvas (the box ignored).

The input of :attr:`evaluated` (and :meth:`sample_latent`) is ``[z, c]`` ``(B, latent + 5)``;
its conditions are drawn from the held-out ones (:meth:`metrics`, :meth:`protocol`).
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
from ganlab.core.seeds import EVAL_SEED, SAMPLE_SEED
from ganlab.data.images import to_unit_range
from ganlab.data.what_where import CONDITION_LAYOUT, check_conditions, digit_crops
from ganlab.losses import GANLoss, NonSaturating
from ganlab.metrics.frechet import frechet_distance, mean_and_covariance

#: Held-out conditions per class in the picture of box overlays (one row per class).
OVERLAY_COLUMNS = 8


def ink_boxes(canvases: Tensor, threshold: float) -> tuple[Tensor, Tensor]:
    """Half-open ``(x0, y0, x1, y1)`` ``(N, 4)`` of the pixels of each canvas ``(N, 1, H, W)``
    above ``threshold``, and whether it has any ``(N,)`` (rows without ink: zeros)."""
    ink = canvases[:, 0] > threshold
    rows, cols = ink.any(dim=2).long(), ink.any(dim=1).long()  # (N, H), (N, W)
    has = rows.any(dim=1)
    y0, x0 = rows.argmax(dim=1), cols.argmax(dim=1)
    y1 = rows.shape[1] - rows.flip(1).argmax(dim=1)
    x1 = cols.shape[1] - cols.flip(1).argmax(dim=1)
    boxes = torch.stack([x0, y0, x1, y1], 1) * has[:, None]
    return boxes, has


def box_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of half-open pixel boxes ``(N, 4)`` and ``(N, 4)``: area of the intersection over
    area of the union, ``(N,)``."""
    a, b = a.double(), b.double()
    w = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    h = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = w * h
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area - inter)


def box_overlay(canvases: Tensor, boxes: Tensor) -> Tensor:
    """Grey canvases ``(N, 1, H, W)`` in [-1, 1] as RGB ``(N, 3, H, W)`` with each box's
    one-pixel outline in red."""
    out = canvases.expand(-1, 3, -1, -1).clone()
    red = torch.tensor([1.0, -1.0, -1.0], device=out.device)[:, None]
    for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
        for rows, cols in ((slice(y0, y1), x0), (slice(y0, y1), x1 - 1), (y0, slice(x0, x1)),
                           (y1 - 1, slice(x0, x1))):
            out[i, :, rows, cols] = red
    return out


def class_interleaved(cond: Tensor) -> Tensor:
    """The rows of ``cond`` ordered by (rank within its class, class), keeping each class's
    order: the first of every class, then the second of every class, ..."""
    labels = cond[:, 0].long()
    order = torch.argsort(labels, stable=True)
    sorted_labels = labels[order]
    first = torch.searchsorted(sorted_labels, sorted_labels)
    rank = torch.empty_like(labels)
    rank[order] = torch.arange(len(labels)) - first
    return cond[torch.argsort(rank * (int(labels.max()) + 1) + labels, stable=True)]


class GAWWN(Family):
    """``model=gawwn``.

    Args:
        generator: ``G(z (B, latent_dim), c (B, 5)) -> (B, 1, canvas, canvas)``.
        discriminator: ``D(x, c) -> logits (B,)``.
        optimizers: factories of the optimizers ``discriminator`` and ``generator``.
        conditions: the held-out conditions ``(M, 5)`` (samples' and metrics' conditions).
        classifier: the lab's digit classifier (a :class:`ClassifierExtractor`) or its file.
        loss: the adversarial costs (non-saturating by default).
        ink_threshold: a generated pixel (in [-1, 1]) above it is ink (location accuracy).
    """

    name: ClassVar[str] = "gawwn"
    #: ``model.metrics``: crop accuracy, location IoU and crop FID (:meth:`metrics`).
    provides = frozenset({"model.metrics"})

    def __init__(self, generator: nn.Module, discriminator: nn.Module,
                 optimizers: dict[str, OptimizerFactory], conditions: Tensor,
                 classifier: Any, loss: GANLoss | None = None, ink_threshold: float = 0.0
                 ) -> None:
        missing = {"discriminator", "generator"} - set(optimizers)
        if missing:
            raise GanlabError(f"model=gawwn: no optimizer for {', '.join(sorted(missing))}")
        if not -1 < ink_threshold < 1:
            raise GanlabError(f"model.ink_threshold must be in (-1, 1); got {ink_threshold}")
        self.generator, self.discriminator = generator, discriminator
        self.factories = dict(optimizers)
        self.latent_dim = int(generator.latent_dim)
        self.num_classes, self.canvas = int(generator.num_classes), int(generator.canvas)
        self.where = bool(generator.where)
        check_conditions(conditions, self.num_classes, self.canvas)
        self.conditions = class_interleaved(conditions.float())
        self._classifier = classifier
        self.loss = loss if loss is not None else NonSaturating()
        self.ink_threshold = float(ink_threshold)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Callable[..., Any]) -> GAWWN:
        """The family of ``cfg.model`` on what-where data (``datamodule``, set up)."""
        m = cfg.model
        if not hasattr(datamodule, "held_out_conditions"):
            raise GanlabError(f"model=gawwn needs (class, box) conditions: data=what_where_digits"
                              f", not {type(datamodule).__name__}")
        held = datamodule.held_out_conditions
        if held is None:
            raise GanlabError("model=gawwn measures on held-out conditions; set data.held_out "
                              "(e.g. data.held_out=0.1)")
        if not isinstance(m.where, bool):
            raise GanlabError(f"model.where must be true or false; got {m.where!r}")
        common = {"num_classes": int(datamodule.num_classes), "canvas": int(datamodule.canvas),
                  "embed_dim": int(m.embed_dim), "where": m.where}
        generator = build(m.generator, "model.generator", latent_dim=int(m.latent_dim),
                          **common)
        discriminator = build(m.discriminator, "model.discriminator", **common)
        factories = {name: build(node, f"model.optimizers.{name}")
                     for name, node in m.optimizers.items()}
        loss = build(m.loss, "model.loss") if m.get("loss") is not None else None
        return cls(generator, discriminator, factories, held, str(m.classifier), loss=loss,
                   ink_threshold=float(m.ink_threshold))

    # -- the family interface -------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, tuple[OptimizerFactory, list[str]]]:
        return {"discriminator": (self.factories["discriminator"], ["discriminator"]),
                "generator": (self.factories["generator"], ["generator"])}

    @property
    def evaluated(self) -> nn.Module:
        return self.generator

    def sample_latent(self, n: int, generator: torch.Generator) -> Tensor:
        """``[z, c]``: ``z ~ N(0, I)`` and ``c`` drawn uniformly from the held-out conditions."""
        device = generator.device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        idx = torch.randint(len(self.conditions), (n,), generator=generator, device=device)
        return torch.cat([z, self.conditions.to(device)[idx]], 1)

    def decode(self, latent: Tensor) -> Tensor:
        """``G(z, c)`` of ``latent = [z, c]``."""
        return self.generator(latent[:, : self.latent_dim], latent[:, self.latent_dim :])

    def tags(self) -> list[str]:
        return [*super().tags(), f"where={'box' if self.where else 'off'}"]

    # -- one iteration --------------------------------------------------------------------
    def draw_z(self, n: int, ctx: TrainContext) -> Tensor:
        """This process's ``n`` rows of a global batch of ``z``, from the run's noise."""
        total = ctx.world_size * n
        return ctx.local_rows(torch.randn(total, self.latent_dim, generator=ctx.noise,
                                          device=ctx.noise.device))

    def discriminator_phase(self, x: Tensor, cond: Tensor, ctx: TrainContext
                            ) -> dict[str, Tensor]:
        """Step 1: one step of D on the real canvas and a fake of the same condition."""
        z = self.draw_z(x.shape[0], ctx).to(x)
        with torch.no_grad():
            fake = self.generator(z, cond)
        real_logits = self.discriminator(x, cond)
        fake_logits = self.discriminator(fake, cond)
        cost = self.loss.d_loss(real_logits, fake_logits)
        ctx.update("discriminator", cost)
        return {"d_loss": cost.detach(), "D_real": torch.sigmoid(real_logits.detach()).mean(),
                "D_fake": torch.sigmoid(fake_logits.detach()).mean()}

    def generator_phase(self, cond: Tensor, ctx: TrainContext) -> Tensor:
        """Step 2: one step of G on the generator cost of fakes of the batch's conditions."""
        z = self.draw_z(cond.shape[0], ctx).to(cond)
        cost = self.loss.g_loss(self.discriminator(self.generator(z, cond), cond))
        ctx.update("generator", cost)
        return cost.detach()

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """The discriminator step, then the generator step, on ``batch``'s minibatch."""
        xs, ys = batch
        x, cond = xs[0], ys[0]
        check_conditions(cond, self.num_classes, self.canvas)
        out = self.discriminator_phase(x, cond, ctx)
        out["g_loss"] = self.generator_phase(cond, ctx)
        return out

    # -- evaluation -----------------------------------------------------------------------
    @property
    def classifier(self) -> Any:
        """The lab's digit classifier (loaded from its file on first use)."""
        if isinstance(self._classifier, str):
            from ganlab.metrics.classifier import load_classifier_extractor

            self._classifier = load_classifier_extractor(self._classifier)
        return self._classifier

    def eval_conditions(self, n: int) -> Tensor:
        """The conditions of the ``n`` measured samples: held-out condition ``i mod M``, in
        :func:`class_interleaved` order (so sample ``i`` has class ``i mod K`` for balanced
        classes)."""
        return self.conditions[torch.arange(n) % len(self.conditions)]

    @torch.no_grad()
    def generate(self, cond: Tensor, seed: int, device: torch.device | str,
                 batch_size: int = 500) -> Tensor:
        """``G(z, c)`` in eval mode for conditions ``cond``, ``z`` from ``seed`` (CPU)."""
        z = torch.randn(len(cond), self.latent_dim, generator=torch.Generator().manual_seed(seed))
        with evaluating(self.generator):
            out = [self.generator(zp.to(device), cp.to(device)).cpu()
                   for zp, cp in zip(z.split(batch_size), cond.split(batch_size), strict=True)]
        return torch.cat(out)

    @torch.no_grad()
    def judge(self, canvases: Tensor, cond: Tensor, device: torch.device | str
              ) -> dict[str, Tensor]:
        """Per canvas: the classifier's prediction on its box's crop, its features, and the
        IoU of the box with the box of its ink."""
        crops = digit_crops(canvases, cond[:, 1:5])
        extractor = self.classifier.to(device)
        feats, logits = [], []
        for part in crops.split(500):
            f, lg = extractor(part.to(device))
            feats.append(f.cpu())
            logits.append(lg.cpu())
        ink, has = ink_boxes(canvases, self.ink_threshold)
        iou = torch.where(has, box_iou(ink, cond[:, 1:5]), torch.zeros((), dtype=torch.float64))
        return {"pred": torch.cat(logits).argmax(1), "features": torch.cat(feats), "iou": iou}

    def per_class_accuracy(self, pred: Tensor, labels: Tensor) -> Tensor:
        """``(K,)``: the share of each class's samples whose crop is classified as it."""
        return torch.stack([(pred[labels == k] == k).double().mean()
                            for k in range(self.num_classes)])

    def metrics(self, datamodule: Any, num_samples: int, device: torch.device | str
                ) -> dict[str, float]:
        """On ``num_samples`` generated canvases of the held-out conditions (:meth:`protocol`):
        ``crop_accuracy`` (mean over classes of ``crop_accuracy_<k>``, the share of class k's
        crops the classifier reads as k), ``location_iou`` (mean IoU of the requested box and
        the box of the ink) and ``crop_fid`` (the classifier's FID of the crops against the
        real crops of the held-out canvases)."""
        if num_samples < self.num_classes:
            raise GanlabError(f"model=gawwn measures every class: metrics.num_samples must be "
                              f">= {self.num_classes}, got {num_samples}")
        cond = self.eval_conditions(num_samples)
        fake = self.judge(self.generate(cond, EVAL_SEED, device), cond, device)
        labels = cond[:, 0].long()
        acc = self.per_class_accuracy(fake["pred"], labels)
        real_cond = datamodule.held_out_conditions  # in the order of held_out_images
        real = self.judge(to_unit_range(datamodule.held_out_images), real_cond, device)
        fid = frechet_distance(*mean_and_covariance(real["features"]),
                               *mean_and_covariance(fake["features"]))
        real_acc = self.per_class_accuracy(real["pred"], real_cond[:, 0].long())
        self._last = {"num_samples": int(num_samples), "num_conditions": len(real_cond),
                      "real_crop_accuracy": float(real_acc.mean()),
                      "real_location_iou": float(real["iou"].mean()),
                      "classifier_test_accuracy": getattr(self.classifier, "test_accuracy", None)}
        return {"crop_accuracy": float(acc.mean()),
                **{f"crop_accuracy_{k}": float(a) for k, a in enumerate(acc)},
                "location_iou": float(fake["iou"].mean()), "crop_fid": fid}

    def protocol(self) -> dict[str, Any]:
        """How :meth:`metrics` measures (with the counts and real references of its last
        call)."""
        return {
            "conditions": "the held-out canvases' (label, box), ordered first of each class, "
                          "second of each class, ...; sample i has condition i mod M (M "
                          "held-out canvases), z ~ N(0, I) from the evaluation seed",
            "condition_layout": list(CONDITION_LAYOUT),
            "where": self.where,
            "noise_seed": EVAL_SEED,
            "crop": "the requested box of each canvas, resized (kornia, bilinear, antialiased) "
                    "to a longer side of 20 px, aspect kept, centred on 28x28 (background -1)",
            "crop_accuracy": "mean over classes of the share of a class's crops that the lab "
                             "digit classifier (mnist_offline) reads as that class",
            "location_iou": "mean over samples of IoU(requested box, bounding box of the "
                            "pixels > ink_threshold); 0 for a canvas without ink",
            "ink_threshold": self.ink_threshold,
            "crop_fid": "Frechet distance of the digit classifier's penultimate features: "
                        "generated crops vs the real crops of the held-out canvases",
            **getattr(self, "_last", {}),
        }

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """``box_overlays``: one row per class, its first :data:`OVERLAY_COLUMNS` held-out
        conditions, each canvas with its requested box in red; ``class_at_boxes``: one row per
        class at the same :data:`OVERLAY_COLUMNS` boxes (of the first held-out conditions),
        one ``z`` for every canvas."""
        device = sampler.device
        labels = self.conditions[:, 0].long()
        rows = [self.conditions[labels == k][:OVERLAY_COLUMNS] for k in range(self.num_classes)]
        cond = torch.cat(rows)
        overlays = box_overlay(self.generate(cond, SAMPLE_SEED, device), cond[:, 1:5])
        boxes = self.conditions[:OVERLAY_COLUMNS, 1:5]
        grid = torch.cat([torch.cat([torch.full((len(boxes), 1), float(k)), boxes], 1)
                          for k in range(self.num_classes)])
        z = torch.randn(1, self.latent_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))
        with torch.no_grad(), evaluating(self.generator):
            same = self.generator(z.expand(len(grid), -1).to(device), grid.to(device)).cpu()
        return {"box_overlays": (overlays, OVERLAY_COLUMNS),
                "class_at_boxes": (box_overlay(same, grid[:, 1:5]), OVERLAY_COLUMNS)}


__all__ = ["GAWWN", "box_iou", "box_overlay", "class_interleaved", "ink_boxes"]
