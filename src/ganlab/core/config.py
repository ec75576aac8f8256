"""Config helpers: building objects from Hydra nodes with one-line errors, and the option
chosen for a config group."""

from __future__ import annotations

from typing import Any

from ganlab.core.errors import GanlabError


def build(node: Any, what: str, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)``, turning any failure into a one-line :class:`GanlabError`."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, GanlabError):
            raise cause from None
        detail = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        raise GanlabError(f"cannot build {what}: {detail}") from None


def choice(group: str) -> str:
    """The config chosen for ``group`` in this Hydra run (the group's name outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get(group, group))
    return group
