"""The one exception type that the command-line tools turn into a one-line message."""


class GanlabError(Exception):
    """A user-facing error: bad input, missing data, an unusable checkpoint.

    The CLI prints ``ganlab: error: <message>`` and exits with status 2, without a traceback.
    """
