"""One-sided label smoothing (Salimans et al. 2016, §3.4; Goodfellow 2016 tutorial, §4.2)."""

from __future__ import annotations

from torch import Tensor

from ganlab.core.errors import GanlabError
from ganlab.tricks.base import DStep, Trick


class LabelSmoothing(Trick):
    """The real target of D's cross-entropy cost becomes ``alpha``; the fake target stays 0.

    The smoothed cost of the tutorial games is
    ``J_D = -1/2 E_x[alpha log D(x) + (1 - alpha) log(1 - D(x))] - 1/2 E_z log(1 - D(G(z)))``.
    Since ``log sigmoid(l) - log(1 - sigmoid(l)) = l``, the real term equals the unsmoothed
    ``-1/2 E_x log D(x)`` plus ``1/2 (1 - alpha) E_x[l]``, so this trick adds exactly
    ``1/2 (1 - alpha) E[l_real]`` to the cost. D's optimum becomes
    ``D*(x) = alpha p_data(x) / (p_data(x) + p_g(x))`` (Salimans et al. 2016 §3.4 with beta = 0).
    """

    name = "label_smoothing"
    needs = frozenset({"loss.cross_entropy"})

    def __init__(self, alpha: float = 0.9) -> None:
        if not 0.0 < alpha <= 1.0:
            raise GanlabError(f"label_smoothing: alpha must be in (0, 1], got {alpha}")
        self.alpha = float(alpha)

    def d_cost(self, cost: Tensor, step: DStep) -> Tensor:
        if step.real_logits.numel() == 0:
            raise ValueError("empty logits: an expectation over zero samples is undefined")
        return cost + 0.5 * (1.0 - self.alpha) * step.real_logits.mean()
