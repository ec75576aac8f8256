"""What a run prints: each line once, and nothing that is not about the run.

Lightning's ``lightning`` logger has a console handler of its own and also propagates to
the root logger, where Hydra's handlers (console and ``<run>/<job>.log``) print it again:
under Hydra the own handler goes, so each line is printed once, by Hydra (and kept in the
run's log file). Lightning's tip that advertises its cloud logger is dropped.
"""

from __future__ import annotations

import logging

#: Loggers of Lightning that may hold a console handler of their own.
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
#: Lightning's advertisement (``rank_zero_info`` in its logger connector).
ADVERTISEMENT = "💡 Tip: For seamless cloud logging"


class _NoAdvertisement(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(ADVERTISEMENT)


def tidy_lightning_logging() -> None:
    """Drop Lightning's advertisement; under Hydra (the root logger has handlers) remove
    Lightning's own console handlers so that each of its lines is printed once."""
    import lightning  # noqa: F401  (its handlers are made on import)

    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdvertisement) for f in rank_zero.filters):
        rank_zero.addFilter(_NoAdvertisement())
    if not logging.getLogger().handlers:
        return  # outside Hydra, Lightning's own handler is the only one
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True
