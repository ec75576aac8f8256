"""Instance noise (Sønderby et al. 2017, "Amortised MAP inference", §3.1 and App. C;
Arjovsky & Bottou 2017, "Towards principled methods", §3.2)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.tricks.base import Trick

SCHEDULES = ("linear", "constant")


class InstanceNoise(Trick):
    """Adds ``N(0, sigma_t^2 I)`` noise to every input of D, real and fake, in D and G steps.

    ``sigma_t = sigma * max(0, 1 - t / anneal_iterations)`` (``linear``) or ``sigma``
    (``constant``), with ``t`` the number of completed iterations. Both distributions are
    convolved with the same Gaussian, so their supports overlap and D's gradients stay
    informative; annealing sigma to 0 recovers the original game. The noise comes from the
    trick's own ``torch.Generator`` (seeded by ``seed``), saved in the checkpoint.
    """

    name = "instance_noise"

    def __init__(
        self,
        sigma: float = 0.1,
        anneal_iterations: int = 10000,
        schedule: str = "linear",
        seed: int = 0,
    ) -> None:
        if schedule not in SCHEDULES:
            raise GanlabError(
                f"instance_noise: unknown schedule '{schedule}'; valid: {', '.join(SCHEDULES)}"
            )
        if not sigma >= 0:
            raise GanlabError(f"instance_noise: sigma must be >= 0, got {sigma}")
        if schedule == "linear" and (isinstance(anneal_iterations, bool) or anneal_iterations < 1):
            raise GanlabError(
                f"instance_noise: anneal_iterations must be >= 1, got {anneal_iterations}"
            )
        self.sigma = float(sigma)
        self.anneal_iterations = int(anneal_iterations)
        self.schedule = schedule
        self.seed = int(seed)
        self._generator: torch.Generator | None = None
        self._pending_state: dict[str, Any] | None = None
        self._last_sigma = self.sigma_at(0)

    def sigma_at(self, iteration: int) -> float:
        """The noise level ``sigma_t`` at iteration ``t``."""
        if self.schedule == "constant":
            return self.sigma
        return self.sigma * max(0.0, 1.0 - iteration / self.anneal_iterations)

    def generator(self, device: torch.device) -> torch.Generator:
        """The noise generator on ``device`` (created, or restored from a checkpoint, lazily)."""
        gen = self._generator
        if gen is not None and gen.device == device:
            return gen
        if gen is not None:  # the run moved to another device: carry on from the same seed
            pending: dict[str, Any] | None = {"device": gen.device.type, "state": gen.get_state()}
        else:
            pending = self._pending_state
        gen = torch.Generator(device=device)
        gen.manual_seed(self.seed)
        if pending is not None:
            if pending["device"] == device.type:
                gen.set_state(pending["state"].to("cpu"))
            else:
                warnings.warn(
                    f"instance_noise: noise state saved on {pending['device']} cannot be used "
                    f"on {device.type}; the noise restarts from seed {self.seed}",
                    stacklevel=2,
                )
        self._pending_state = None
        self._generator = gen
        return gen

    def d_input(self, x: Tensor, iteration: int) -> Tensor:
        sigma = self.sigma_at(iteration)
        self._last_sigma = sigma
        if sigma == 0.0:
            return x
        gen = self.generator(x.device)
        noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
        return x + sigma * noise

    def log_values(self) -> dict[str, float]:
        """``sigma``: the noise level of the last inputs of D."""
        return {"sigma": self._last_sigma}

    def state_dict(self) -> dict[str, Any]:
        if self._generator is not None:
            return {"device": self._generator.device.type, "state": self._generator.get_state()}
        if self._pending_state is not None:
            return dict(self._pending_state)
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self._generator = None
        self._pending_state = {"device": str(state["device"]), "state": state["state"]}
