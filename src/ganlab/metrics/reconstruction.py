"""Reconstruction error of models with an encoder (BiGAN, the adversarial autoencoder)."""

from __future__ import annotations

from ganlab.core.seeds import RECONSTRUCTION_SEED
from ganlab.metrics.metric import Evaluation, Metric


class Reconstruction(Metric):
    """Needs ``model.reconstruct``: ``reconstruction_mse`` = mean over ``num_samples`` real
    samples (drawn with :data:`~ganlab.core.seeds.RECONSTRUCTION_SEED`) of
    ``‖x - G(E(x))‖² / dim(x)``."""

    name = "reconstruction"
    needs = frozenset({"model.reconstruct"})

    def __call__(self, ev: Evaluation) -> dict[str, float]:
        model = ev.model
        real = ev.datamodule.sample_n(ev.num_samples, seed=RECONSTRUCTION_SEED).to(model.device)
        rec = model.reconstruct(real)
        return {"reconstruction_mse": float((rec - real).pow(2).mean())}
