"""Capabilities: what the parts of a run provide and need, checked once, generically.

A capability is a dotted name whose first part says whose it is: ``discriminator.features``
(D exposes ``features()``/``head()``), ``discriminator.batch_norm``, ``generator.batch_norm``,
``loss.cross_entropy`` (D's cost is the cross-entropy of the tutorial games), ``data.labels``,
``data.images``, ``generator.objective`` (a plugin replaces G's adversarial cost),
``generator.average`` (a plugin keeps the generator used for evaluation). Networks, losses and
data *provide* capabilities; plugins provide, *need* and *exclude* them. What plugins provide
is exclusive: two plugins providing the same capability cannot run together.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ganlab.core.errors import GanlabError


@dataclass(frozen=True)
class Component:
    """One part of a run as the check sees it: ``who`` names it in messages (e.g.
    ``trick 'r1'``, ``discriminator 'dcgan'``); ``owner`` is the first part of the capabilities
    it is responsible for (``discriminator``, ``loss``, ...; empty for plugins)."""

    who: str
    provides: frozenset[str] = field(default_factory=frozenset)
    needs: frozenset[str] = field(default_factory=frozenset)
    excludes: frozenset[str] = field(default_factory=frozenset)
    owner: str = ""
    exclusive: bool = False


def declared(obj: object, attribute: str) -> frozenset[str]:
    """The capabilities ``obj`` declares under ``attribute`` (a set, or a method returning
    one); none when it declares nothing."""
    value = getattr(obj, attribute, None)
    if callable(value):
        value = value()
    return frozenset(value or ())


def check(components: Iterable[Component]) -> None:
    """Raise one-line :class:`GanlabError` for the first mismatch: a capability two exclusive
    components both provide, one a component needs that nothing provides, or one it excludes
    that another provides. The message names both sides."""
    parts = list(components)
    providers: dict[str, Component] = {}
    for part in parts:
        for cap in sorted(part.provides):
            other = providers.get(cap)
            if other is not None and part.exclusive and other.exclusive:
                raise GanlabError(
                    f"{other.who} and {part.who} both provide {cap}; use only one of them"
                )
            providers.setdefault(cap, part)
    owners = {p.owner: p for p in parts if p.owner}
    for part in parts:
        for cap in sorted(part.needs):
            if cap in providers:
                continue
            owner = owners.get(cap.split(".", 1)[0])
            if owner is not None:
                raise GanlabError(f"{part.who} needs {cap}, which {owner.who} does not provide")
            raise GanlabError(f"{part.who} needs {cap}, which no part of this run provides")
        for cap in sorted(part.excludes):
            other = providers.get(cap)
            if other is not None and other is not part:
                raise GanlabError(f"{part.who} cannot be used with {other.who} ({cap})")
