"""pix2pix (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional
Adversarial Networks"; GAN_SPEC §7): paired translation ``x → y``.

Players: a U-Net generator ``G`` (:class:`ganlab.nets.unet.UNetGenerator`; its only noise is
dropout) and a PatchGAN discriminator ``D`` (:class:`ganlab.nets.patchgan.PatchGANDiscriminator`)
judging ``(x, y)`` pairs patch by patch. The objective (eq. 4) is
``G* = arg min_G max_D L_cGAN(G, D) + λ L_L1(G)`` with
``L_cGAN = E log D(x, y) + E log(1 - D(x, G(x)))`` (eq. 1) and ``L_L1 = E ‖y - G(x)‖₁`` (eq. 3).

One iteration (= one call of :meth:`Pix2Pix.train_step`, on one minibatch of pairs) is the
paper's §3.3, as its official code does it: ``G(x)`` is drawn once (its dropout masks from the
run's checkpointed noise generator), then

1. the optimizer ``discriminator`` takes one step on the cross-entropy over every patch logit,
   halved as the paper says ("we divide the objective by 2 while optimizing D"):
   ``J_D = 1/2 E softplus(-D(x, y)) + 1/2 E softplus(D(x, G(x)))``
   (:class:`ganlab.losses.NonSaturating`'s ``d_loss``; ``G(x)`` is a constant here);
2. the optimizer ``generator`` takes one step on
   ``J_G = w_adv · E softplus(-D(x, G(x))) + λ · E |y - G(x)|`` — the non-saturating
   ``-log D(x, G(x))`` (§3.3) averaged over patches, with D as step 1 left it, plus ``λ`` times
   the mean absolute error over pixels (``λ = model.l1_weight = 100``).

With ``model.adversarial_weight=0`` the same G is trained on ``λ · L1`` alone (the paper's "L1"
row of Table 1): D is then not built at all, because nothing it learns reaches G; G starts from
the same weights (it is built first, from the same seed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.family import Batch, TrainContext
from ganlab.core.players import OptimizerFactory
from ganlab.data.images import to_unit_range
from ganlab.families.image_to_image import ImageToImage
from ganlab.losses import GANLoss, NonSaturating
from ganlab.metrics import paired

#: Target of the classifier extractor config (``extractor=classifier``).
CLASSIFIER_TARGET = "ganlab.metrics.classifier.load_classifier_extractor"


class Pix2Pix(ImageToImage):
    """``model=pix2pix``.

    Args:
        generator: ``x (B, C_x, H, W) -> y (B, C_y, H, W)`` in [-1, 1].
        discriminator: ``(x, y) -> patch logits (B, 1, H', W')``; ``None`` for the L1-only G.
        optimizers: factories of ``generator`` (and ``discriminator`` with a D).
        sources: held-out sources in [-1, 1]: the inputs :meth:`sample_latent` draws.
        l1_weight: ``λ``.
        adversarial_weight: ``w_adv``; 0 trains G on L1 alone (and needs no D).
        classifier: file of the lab classifier that judges outputs (``None``: no accuracy).
        num_pictures: held-out pairs shown as ``input | output | target`` triples.
    """

    name: ClassVar[str] = "pix2pix"
    #: ``model.metrics``: held-out L1, PSNR, SSIM and classifier accuracy (:meth:`metrics`).
    provides = frozenset({"model.metrics"})

    def __init__(self, generator: nn.Module, discriminator: nn.Module | None,
                 optimizers: dict[str, OptimizerFactory], sources: Tensor,
                 l1_weight: float = 100.0, adversarial_weight: float = 1.0,
                 classifier: str | None = None, num_pictures: int = 32,
                 loss: GANLoss | None = None) -> None:
        if l1_weight < 0 or adversarial_weight < 0:
            raise GanlabError(f"model.l1_weight and model.adversarial_weight must be >= 0; got "
                              f"{l1_weight} and {adversarial_weight}")
        if l1_weight == 0 and adversarial_weight == 0:
            raise GanlabError("model.l1_weight and model.adversarial_weight are both 0: G "
                              "would have no cost")
        if adversarial_weight > 0 and discriminator is None:
            raise GanlabError("model.adversarial_weight > 0 needs a discriminator")
        self.set_players(generator, discriminator if adversarial_weight > 0 else None,
                         optimizers, sources)
        self.l1_weight, self.adversarial_weight = float(l1_weight), float(adversarial_weight)
        self.classifier_path = classifier
        self._classifier: Any = None
        self.num_pictures = int(num_pictures)
        self.loss = loss if loss is not None else NonSaturating()

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Callable[..., Any]) -> Pix2Pix:
        """The family of ``cfg.model`` for the paired data of ``datamodule`` (set up)."""
        m = cfg.model
        sources = getattr(datamodule, "held_out_sources", None)
        if sources is None or getattr(datamodule, "held_out_images", None) is None:
            raise GanlabError(f"model=pix2pix needs paired data with held-out pairs "
                              f"(data=paired_digits, data=facades, data=maps); got "
                              f"{type(datamodule).__name__}")
        target_shape = tuple(int(s) for s in datamodule.data_shape)
        source_shape = tuple(int(s) for s in sources.shape[1:])
        if source_shape[1:] != target_shape[1:]:
            raise GanlabError(f"model=pix2pix translates images of one size; sources are "
                              f"{source_shape} and targets {target_shape}")
        adversarial = float(m.adversarial_weight)
        generator = build(m.generator, "model.generator", in_channels=source_shape[0],
                          out_channels=target_shape[0], image_size=target_shape[1])
        discriminator = None
        if adversarial > 0:
            discriminator = build(m.discriminator, "model.discriminator",
                                  source_channels=source_shape[0],
                                  target_channels=target_shape[0])
        factories = {name: build(node, f"model.optimizers.{name}")
                     for name, node in m.optimizers.items()}
        classifier = m.get("classifier")
        extractor = cfg.get("extractor")
        if classifier is None and extractor is not None and \
                extractor.get("_target_") == CLASSIFIER_TARGET:
            classifier = str(extractor.path)
        return cls(generator, discriminator, factories, to_unit_range(sources),
                   l1_weight=float(m.l1_weight), adversarial_weight=adversarial,
                   classifier=classifier, num_pictures=int(m.get("num_pictures", 32)))

    # -- one iteration --------------------------------------------------------------------
    def translate(self, x: Tensor, ctx: TrainContext) -> Tensor:
        """``G(x)`` in training mode, its dropout masks drawn from a seed of ``ctx.noise``
        (so a resumed run draws the same ones)."""
        seed = int(torch.randint(2**62, (1,), generator=ctx.noise, device=ctx.noise.device))
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return self.generator(x)

    def discriminator_phase(self, x: Tensor, y: Tensor, fake: Tensor, ctx: TrainContext
                            ) -> dict[str, Tensor]:
        """Step 1: one step of D on ``J_D`` over the patches of ``(x, y)`` (real) and
        ``(x, G(x))`` (fake)."""
        assert self.discriminator is not None
        real_logits = self.discriminator(x, y)
        fake_logits = self.discriminator(x, fake.detach())
        cost = self.loss.d_loss(real_logits, fake_logits)
        ctx.update("discriminator", cost)
        return {"d_loss": cost.detach(), "D_real": torch.sigmoid(real_logits.detach()).mean(),
                "D_fake": torch.sigmoid(fake_logits.detach()).mean()}

    def generator_cost(self, x: Tensor, y: Tensor, fake: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(J_G, its adversarial term E softplus(-D(x, G(x))), its E|y - G(x)|)``."""
        l1 = (y - fake).abs().mean()
        if self.discriminator is None:
            adversarial = torch.zeros((), device=fake.device)
            return self.l1_weight * l1, adversarial, l1
        adversarial = F.softplus(-self.discriminator(x, fake)).mean()
        return self.adversarial_weight * adversarial + self.l1_weight * l1, adversarial, l1

    def generator_phase(self, x: Tensor, y: Tensor, fake: Tensor, ctx: TrainContext
                        ) -> dict[str, Tensor]:
        """Step 2: one step of G on ``J_G``."""
        cost, adversarial, l1 = self.generator_cost(x, y, fake)
        ctx.update("generator", cost)
        out = {"g_loss": cost.detach(), "l1": l1.detach()}
        if self.discriminator is not None:
            out["g_adversarial"] = adversarial.detach()
        return out

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """``G(x)`` once, then the D step (unless L1-only), then the G step."""
        targets, sources = batch
        y, x = targets[0], sources[0]
        if x.shape[0] != y.shape[0] or x.dim() != 4:
            raise GanlabError(f"model=pix2pix needs minibatches of (targets, sources) images; "
                              f"got {tuple(y.shape)} and {tuple(x.shape)}")
        fake = self.translate(x, ctx)
        out: dict[str, Tensor] = {}
        if self.discriminator is not None:
            out.update(self.discriminator_phase(x, y, fake, ctx))
        out.update(self.generator_phase(x, y, fake, ctx))
        return out

    # -- evaluation -----------------------------------------------------------------------
    def classifier(self) -> Any:
        """The lab classifier of :attr:`classifier_path` (loaded once), or ``None``."""
        if self._classifier is None and self.classifier_path is not None:
            from ganlab.metrics.classifier import load_classifier_extractor

            self._classifier = load_classifier_extractor(self.classifier_path)
        return self._classifier

    def metrics(self, datamodule: Any, num_samples: int, device: torch.device | str
                ) -> dict[str, float]:
        """On up to ``num_samples`` held-out pairs (:func:`ganlab.metrics.paired.paired_scores`):
        ``l1``, ``psnr``, ``ssim`` of ``G(x)`` (eval mode: dropout off) against ``y``; with a
        classifier and labels, ``accuracy_outputs`` (its accuracy on ``G(x)``) and
        ``accuracy_targets`` (on ``y``, the ceiling)."""
        x, y, labels = paired.held_out_pairs(datamodule, num_samples, self.name)
        outputs = paired.translate(self.generator, x, device)
        classifier = self.classifier() if labels is not None else None
        self._last = {"num_held_out": len(x),
                      "classifier": self.classifier_path if classifier is not None else None}
        return paired.paired_scores(outputs, y, labels, classifier)

    def protocol(self) -> dict[str, Any]:
        """How :meth:`metrics` measures (with the counts of its last call)."""
        return {
            "pairs": "held-out pairs (data.held_out / the dataset's test split), chosen by "
                     "ganlab.core.seeds.RECONSTRUCTION_SEED",
            "generator_mode": "eval (dropout off, batch-norm running statistics)",
            "l1": "mean over images and pixels (in [-1, 1]) of |G(x) - y|",
            "psnr": f"mean over images of 10 log10(range^2 / MSE), range {paired.DATA_RANGE} "
                    "(torchmetrics)",
            "ssim": f"torchmetrics SSIM, gaussian window 11, sigma 1.5, data_range "
                    f"{paired.DATA_RANGE}, mean over images",
            "accuracy": "share of G(x) (outputs) and of y (targets) the lab classifier labels "
                        "as y's digit",
            "l1_weight": self.l1_weight,
            "adversarial_weight": self.adversarial_weight,
            **getattr(self, "_last", {}),
        }

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, Any]:
        """``translations``: rows of 4 ``input | output | target`` triples of held-out pairs
        (:func:`ganlab.metrics.paired.triplet_grid`)."""
        x, y, _ = paired.held_out_pairs(datamodule, self.num_pictures, self.name)
        outputs = sampler.generate_from(x.to(sampler.device)).cpu()
        return {"translations": paired.triplet_grid(x, outputs, y, per_row=4)}

    def tags(self) -> list[str]:
        kind = "l1_only" if self.discriminator is None else "cgan_l1"
        return [*super().tags(), f"objective={kind}"]


__all__ = ["Pix2Pix"]
