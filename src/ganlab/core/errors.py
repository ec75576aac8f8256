"""The one exception type that the command-line tools turn into a one-line message."""


class GanlabError(Exception):
    """A user-facing error: bad input, missing data, an unusable checkpoint.

    The CLI prints ``ganlab: error: <message>`` and exits with status 2, without a traceback.
    """


class Interrupted(Exception):
    """A run stopped by a signal (SIGTERM, SIGINT, a scheduler's requeue signal) after saving
    the iteration it reached; the CLI prints one line and exits with 128 + ``signum``.

    Args:
        signum: the signal that stopped the run.
        iteration: the iteration reached (and saved, when ``checkpoint`` is set).
        checkpoint: the checkpoint written at that iteration (None: none was written).
        requeued: the job was requeued by the scheduler (it will continue by itself).
        rank: the data-parallel rank raising it (only rank 0 prints).
    """

    def __init__(self, signum: int, iteration: int, checkpoint: str | None,
                 requeued: bool = False, rank: int = 0) -> None:
        self.signum, self.iteration, self.checkpoint = signum, iteration, checkpoint
        self.requeued, self.rank = requeued, rank
        super().__init__(f"signal {signum} at iteration {iteration}")
