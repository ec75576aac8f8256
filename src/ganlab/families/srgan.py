"""SRGAN and SRResNet (Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network"; GAN_SPEC §7): ×``scale`` super-resolution of paired images.

The players are the generator ``G`` (:class:`ganlab.nets.srresnet.SRResNet`: low-resolution
``x`` → high-resolution ``G(x)``) and, for SRGAN, the discriminator ``D`` on high-resolution
images. A minibatch is ``(y, x)``: targets and their downsampled sources
(:class:`ganlab.data.paired.PairedDigits`, ``pairing=low_resolution``).

- ``model=srresnet``: one iteration is one step of ``G`` on the pixel MSE (eq. 4),
  ``l_MSE = mean over the batch and the pixels of (y - G(x))²``.
- ``model=srgan``: one iteration is one step of ``D`` on the cross-entropy cost of telling
  ``y`` (real) from ``G(x)`` (fake), ``J_D = 1/2 E softplus(-D(y)) + 1/2 E softplus(D(G(x)))``
  (eq. 2, :class:`ganlab.losses.NonSaturating`'s ``d_loss``), then one step of ``G`` on the
  perceptual loss (eq. 3)

      l_SR = content.weight · l_X + adversarial_weight · mean(-log D(G(x))),

  with ``adversarial_weight = 10⁻³`` (the paper's) and ``-log D = softplus(-logit)`` (eq. 6;
  twice NonSaturating's ``g_loss``, which carries a 1/2). The content loss ``l_X`` is the
  mean over the batch, channels and positions of ``(φ(y) - φ(G(x)))²`` (eq. 5), ``φ`` a feature
  map of a fixed network (:class:`FixedFeatures`): offline a layer of the lab classifier
  (:class:`ClassifierFeatures`), or VGG19's φ5,4 as in the paper (:class:`VGGFeatures`), or
  ``pixel`` (``φ`` = identity: SRGAN-MSE). The fixed network is no player: it is in eval
  mode, its parameters take no gradient, no optimizer holds it and checkpoints leave it out.

No noise is drawn: a run is fixed by the data's seed. :meth:`SRGAN.metrics` scores the ×4
outputs on the held-out pairs against the targets (L1, PSNR, SSIM: the shared
:mod:`ganlab.metrics.paired`) and with the lab classifier (accuracy on the digits' labels,
Fréchet distance of its features to the real held-out digits), and the same numbers for bicubic
upsampling of the sources (the paper's baseline), prefixed ``bicubic_``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganlab.core.errors import GanlabError
from ganlab.core.family import Batch, TrainContext
from ganlab.core.players import OptimizerFactory
from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.data.images import resolve_path, to_unit_range
from ganlab.families.image_to_image import ImageToImage
from ganlab.losses import GANLoss, NonSaturating
from ganlab.metrics.classifier import ClassifierExtractor, load_classifier_extractor
from ganlab.metrics.frechet import frechet_distance, mean_and_covariance
from ganlab.metrics.paired import held_out_pairs, paired_scores, translate

#: Layers of the lab classifier that :class:`ClassifierFeatures` offers, and what they are.
CLASSIFIER_LAYERS = {
    "conv1": "ReLU of the first 3x3 convolution (16 x 28 x 28)",
    "conv2": "ReLU of the second 3x3 convolution, before its max-pool (32 x 14 x 14)",
    "features": "the penultimate (fully connected, 128) activations",
}
#: Held-out pairs shown in the picture (rows of 10).
PICTURE_PAIRS = 20


class FixedFeatures(nn.Module):
    """A fixed network's feature map ``φ``: always in eval mode, its parameters frozen."""

    #: A short name of the layer (the run's W&B tag ``content=<layer>``).
    layer: str = ""

    def freeze(self) -> None:
        """No gradient to the parameters, eval mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FixedFeatures:
        """Stays in eval mode whatever is asked (a fixed network's BN/dropout never train)."""
        return super().train(False)

    def describe(self) -> str:
        """The network and layer, in words (for the protocol and README)."""
        return self.layer


class ClassifierFeatures(FixedFeatures):
    """``φ`` = a layer of the lab classifier (:class:`ganlab.metrics.classifier.DigitClassifier`)
    on images in [-1, 1]; ``layer`` one of :data:`CLASSIFIER_LAYERS`."""

    def __init__(self, extractor: ClassifierExtractor, layer: str = "conv2") -> None:
        super().__init__()
        if layer not in CLASSIFIER_LAYERS:
            raise GanlabError(f"model.content.layer must be one of "
                              f"{', '.join(CLASSIFIER_LAYERS)}; got {layer!r}")
        self.classifier = copy.deepcopy(extractor.classifier)  # the scorer's stays on its device
        self.layer = layer
        self.freeze()

    def forward(self, x: Tensor) -> Tensor:
        c = self.classifier
        if self.layer == "features":
            return c.features(x)
        return c.conv[: 2 if self.layer == "conv1" else 5](x)

    def describe(self) -> str:
        return f"lab classifier, {self.layer}: {CLASSIFIER_LAYERS[self.layer]}"


#: torchvision's VGG19 ImageNet weights (the file torch.hub keeps them in).
VGG19_FILE = "vgg19-dcbb9e9d.pth"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGGFeatures(FixedFeatures):
    """``φ5,4`` of VGG19 (the paper's content network): the ReLU after the 4th convolution
    before the 5th max-pool (``features[:36]``), on images mapped from [-1, 1] to [0, 1],
    repeated to 3 channels and normalised with ImageNet's mean and std.

    Args:
        weights: a VGG19 state-dict file; ``None``: torchvision's IMAGENET1K_V1 weights
            (downloaded into ``torch.hub.get_dir()/checkpoints`` on first use).
    """

    layer = "vgg19_phi54"

    def __init__(self, weights: str | None = None) -> None:
        super().__init__()
        from torchvision.models import vgg19

        state = self.state_from(weights)
        net = vgg19()
        net.load_state_dict(state)
        self.net = net.features[:36]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.freeze()

    @staticmethod
    def state_from(weights: str | None) -> dict[str, Tensor]:
        """The VGG19 state dict from ``weights`` or torch.hub (one line when unavailable)."""
        if weights is not None:
            file = resolve_path(weights)
            if not file.is_file():
                raise GanlabError(f"no VGG19 weights at {file} (model.content.weights)")
            try:
                return torch.load(file, map_location="cpu", weights_only=True)
            except Exception as exc:  # torch.load raises many types on a foreign file
                raise GanlabError(f"cannot read VGG19 weights {file}: "
                                  f"{str(exc).strip().splitlines()[0][:200]}") from None
        from torchvision.models import VGG19_Weights

        folder = Path(torch.hub.get_dir()) / "checkpoints"
        try:
            return VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        except Exception:  # no network, a proxy, a partial file: all mean "not here"
            raise GanlabError(
                f"cannot download the VGG19 weights (model.content.network=vgg19): put "
                f"{VGG19_FILE} (from {VGG19_Weights.IMAGENET1K_V1.url}) in {folder}, or set "
                "model.content.weights=<file>"
            ) from None

    def forward(self, x: Tensor) -> Tensor:
        x = ((x + 1) / 2).expand(-1, 3, -1, -1) if x.shape[1] == 1 else (x + 1) / 2
        return self.net((x - self.mean) / self.std)

    def describe(self) -> str:
        return "VGG19 (torchvision ImageNet) phi_5,4: features[:36], before the 5th max-pool"


class PixelFeatures(FixedFeatures):
    """``φ`` = the identity: the content loss is the pixel MSE (eq. 4; SRResNet, SRGAN-MSE)."""

    layer = "pixels"

    def forward(self, x: Tensor) -> Tensor:
        return x

    def describe(self) -> str:
        return "pixels (MSE)"


def content_network(node: Any, classifier: ClassifierExtractor | None) -> FixedFeatures:
    """The ``φ`` of ``model.content``: ``network`` = ``pixel``, ``classifier`` (``layer``) or
    ``vgg19`` (``weights``)."""
    network = str(node.get("network", "pixel"))
    if network == "pixel":
        return PixelFeatures()
    if network == "classifier":
        assert classifier is not None
        return ClassifierFeatures(classifier, str(node.get("layer", "conv2")))
    if network == "vgg19":
        return VGGFeatures(node.get("weights"))
    raise GanlabError(f"model.content.network must be pixel, classifier or vgg19; got "
                      f"{network!r}")


def bicubic(x: Tensor, scale: int) -> Tensor:
    """The baseline: ``x`` upsampled ×``scale`` by bicubic interpolation (kornia), clamped to
    [-1, 1]."""
    import kornia

    return kornia.geometry.transform.rescale(x, float(scale), interpolation="bicubic",
                                             align_corners=False, antialias=False).clamp(-1, 1)


class SRGAN(ImageToImage):
    """``model=srgan``.

    Args:
        generator: ``x (N, C, h, w) -> (N, C, scale·h, scale·w)``.
        discriminator: ``(N, C, H, W) -> logits (N,)``; ``None`` for SRResNet.
        content: ``φ`` of the content loss.
        classifier: the lab classifier that scores outputs (:meth:`metrics`).
        inputs: low-resolution images in [-1, 1] that :meth:`sample_latent` draws from (the
            held-out sources).
        optimizers: factories of ``discriminator`` (with a D) and ``generator``.
        scale: the ×factor.
        loss: the adversarial costs (non-saturating cross-entropy).
        content_weight: the weight of ``l_X``.
        adversarial_weight: the weight of ``mean(-log D(G(x)))`` (the paper: 10⁻³).
    """

    name: ClassVar[str] = "srgan"
    #: ``model.metrics``: it scores its outputs on the held-out pairs itself (:meth:`metrics`).
    provides = frozenset({"model.metrics"})
    #: Whether the family has a discriminator (SRResNet: no).
    adversarial: ClassVar[bool] = True

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module | None,
        content: FixedFeatures,
        classifier: ClassifierExtractor,
        inputs: Tensor,
        optimizers: dict[str, OptimizerFactory],
        scale: int = 4,
        loss: GANLoss | None = None,
        content_weight: float = 1.0,
        adversarial_weight: float = 1e-3,
    ) -> None:
        if self.adversarial and discriminator is None:
            raise GanlabError(f"model={self.name} needs a discriminator")
        if not content_weight >= 0 or not adversarial_weight >= 0:
            raise GanlabError(f"model.content.weight and model.adversarial_weight must be >= 0; "
                              f"got {content_weight} and {adversarial_weight}")
        self.set_players(generator, discriminator if self.adversarial else None, optimizers,
                         inputs)
        self.content, self.classifier = content, classifier
        self.scale = int(scale)
        self.loss = loss if loss is not None else NonSaturating()
        self.content_weight = float(content_weight)
        self.adversarial_weight = float(adversarial_weight) if self.adversarial else 0.0

    # -- building -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Any, datamodule: Any, build: Callable[..., Any]) -> SRGAN:
        """The family of ``cfg.model`` for paired low-resolution data (``datamodule`` set up),
        each node built by ``build(node, what, **kwargs)``."""
        m = cfg.model
        sources = getattr(datamodule, "held_out_sources", None)
        if getattr(datamodule, "pairing", None) != "low_resolution" or sources is None:
            raise GanlabError(f"model={cls.name} needs held-out low-resolution pairs: "
                              "data=paired_digits data.pairing=low_resolution with "
                              "data.held_out > 0")
        channels, height, _ = (int(s) for s in datamodule.data_shape)
        scale = int(datamodule.scale)
        generator = build(m.generator, "model.generator", channels=channels, scale=scale)
        discriminator = build(m.discriminator, "model.discriminator", channels=channels,
                              image_size=height) if cls.adversarial else None
        if m.get("init_from"):
            load_generator(generator, m.init_from)
        classifier = load_classifier_extractor(m.classifier)
        content = content_network(m.content, classifier)
        factories = {name: build(node, f"model.optimizers.{name}")
                     for name, node in m.optimizers.items()}
        return cls(generator, discriminator, content, classifier, to_unit_range(sources),
                   factories, scale=scale, content_weight=float(m.content.get("weight", 1.0)),
                   adversarial_weight=float(m.get("adversarial_weight", 1e-3)))

    # -- one iteration --------------------------------------------------------------------
    def content_cost(self, output: Tensor, target: Tensor) -> Tensor:
        """``l_X``: the mean of ``(φ(y) - φ(G(x)))²`` (φ(y) without a graph)."""
        self.content.to(output.device)
        with torch.no_grad():
            phi_target = self.content(target)
        return (self.content(output) - phi_target).pow(2).mean()

    def discriminator_phase(self, y: Tensor, fake: Tensor, ctx: TrainContext
                            ) -> dict[str, Tensor]:
        """One step of D on ``J_D``, ``y`` real and ``fake = G(x)`` a constant."""
        assert self.discriminator is not None
        real_logits, fake_logits = self.discriminator(y), self.discriminator(fake.detach())
        cost = self.loss.d_loss(real_logits, fake_logits)
        ctx.update("discriminator", cost)
        return {"d_loss": cost.detach(), "D_real": torch.sigmoid(real_logits.detach()).mean(),
                "D_fake": torch.sigmoid(fake_logits.detach()).mean()}

    def generator_phase(self, y: Tensor, x: Tensor, ctx: TrainContext,
                        output: Tensor | None = None) -> dict[str, Tensor]:
        """One step of G on ``content_weight · l_X + adversarial_weight · mean(-log D(G(x)))``
        (``output``: ``G(x)`` with its graph, when already computed), D as it is now."""
        output = self.generator(x) if output is None else output
        content = self.content_cost(output, y)
        cost = self.content_weight * content
        out = {"content": content.detach()}
        if self.adversarial:
            assert self.discriminator is not None
            adversarial = F.softplus(-self.discriminator(output)).mean()
            cost = cost + self.adversarial_weight * adversarial
            out["adversarial"] = adversarial.detach()
        ctx.update("generator", cost)
        out["g_loss"] = cost.detach()
        return out

    def train_step(self, batch: Batch, ctx: TrainContext) -> dict[str, Tensor]:
        """One step of D (SRGAN), then one of G, on the minibatch ``(y, x)``. ``G(x)`` is
        computed once: G does not change between the two steps."""
        (y,), (x,) = batch
        output = self.generator(x)
        out = self.discriminator_phase(y, output, ctx) if self.adversarial else {}
        out.update(self.generator_phase(y, x, ctx, output))
        return out

    # -- evaluation -----------------------------------------------------------------------
    @torch.no_grad()
    def score(self, output: Tensor, target: Tensor, labels: Tensor,
              real_statistics: tuple[Tensor, Tensor]) -> dict[str, float]:
        """:func:`ganlab.metrics.paired.paired_scores` of ``output`` (``l1``, ``psnr``,
        ``ssim``, ``accuracy_outputs``, ``accuracy_targets``) and ``classifier_fid``, the
        Fréchet distance of the classifier's features of ``output`` to ``real_statistics``."""
        self.classifier.to("cpu")
        scores = paired_scores(output, target, labels, self.classifier)
        scores["classifier_fid"] = frechet_distance(
            *real_statistics, *mean_and_covariance(self.classifier(output)[0]))
        return scores

    def metrics(self, datamodule: Any, num_samples: int, device: torch.device | str
                ) -> dict[str, float]:
        """On up to ``num_samples`` held-out pairs (:func:`ganlab.metrics.paired.held_out_pairs`):
        :meth:`score` of ``G(x)``, and of the bicubic baseline prefixed ``bicubic_``."""
        x, y, labels = held_out_pairs(datamodule, num_samples, self.name)
        self.classifier.to("cpu")
        with torch.no_grad():
            real = mean_and_covariance(self.classifier(y)[0])
        values = self.score(translate(self.generator, x, device), y, labels, real)
        baseline = self.score(bicubic(x, self.scale), y, labels, real)
        values.update({f"bicubic_{k}": v for k, v in baseline.items() if k != "accuracy_targets"})
        self._last = {"num_held_out": len(x)}
        return values

    def protocol(self) -> dict[str, Any]:
        """How :meth:`metrics` measures (with the count of its last call)."""
        return {
            "pairs": f"held-out (x, y) pairs, x = y downsampled x{self.scale}",
            "scores": "ganlab.metrics.paired: l1, psnr (data range 2 on [-1, 1], per image), "
                      "ssim (11x11 Gaussian, sigma 1.5), accuracy_outputs/_targets (the lab "
                      "classifier on the digits' labels)",
            "classifier_fid": "Frechet distance of the lab classifier's penultimate features "
                              "of the outputs to those of the held-out targets",
            "bicubic": "x upsampled bicubically (kornia, align_corners=False), clamped",
            "content": self.content.describe(),
            "held_out_seed": RECONSTRUCTION_SEED,
            **getattr(self, "_last", {}),
        }

    def pictures(self, sampler: Any, datamodule: Any) -> dict[str, tuple[Tensor, int]]:
        """``super_resolution``: for rows of 10 held-out pairs, the input (nearest-neighbour
        upsampled for display), its bicubic upsampling, ``G(x)`` and the target, one row
        each."""
        x, y, _ = held_out_pairs(datamodule, PICTURE_PAIRS, self.name)
        cols = 10
        rows = len(x) // cols
        x, y = x[: rows * cols], y[: rows * cols]
        output = sampler.generate_from(x).cpu()
        shown = [F.interpolate(x, scale_factor=self.scale, mode="nearest"), bicubic(x, self.scale),
                 output, y]
        grid = torch.stack([s.view(rows, cols, *y.shape[1:]) for s in shown], 1)
        return {"super_resolution": (grid.reshape(-1, *y.shape[1:]), cols)}

    def tags(self) -> list[str]:
        return [*super().tags(), f"content={self.content.layer}"]


class SRResNetFamily(SRGAN):
    """``model=srresnet``: the same G with the adversarial part switched off, on the content
    loss alone (the pixel MSE in ``conf/model/srresnet.yaml``)."""

    name: ClassVar[str] = "srresnet"
    adversarial: ClassVar[bool] = False


def load_generator(generator: nn.Module, path: str) -> None:
    """Initialise ``generator`` from a run's checkpoint (its ``generator.*`` weights; the
    paper starts SRGAN from a trained SRResNet)."""
    file = resolve_path(path)
    if not file.is_file():
        raise GanlabError(f"model.init_from: no checkpoint at {file}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as exc:  # torch.load raises many types on a foreign file
        raise GanlabError(f"model.init_from: cannot read {file} as a ganlab checkpoint: "
                          f"{(str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]}"
                          ) from None
    weights = {k.removeprefix("generator."): v for k, v in state.items()
               if k.startswith("generator.")}
    try:
        generator.load_state_dict(weights)
    except RuntimeError as exc:
        raise GanlabError(f"model.init_from: {file}'s generator does not match model.generator: "
                          f"{str(exc).strip().splitlines()[0][:200]}") from None


__all__ = ["CLASSIFIER_LAYERS", "ClassifierFeatures", "FixedFeatures", "PixelFeatures", "SRGAN",
           "SRResNetFamily", "VGGFeatures", "bicubic", "content_network", "load_generator"]
