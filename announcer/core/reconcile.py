"""The difference between the routes we want and the routes ExaBGP has acknowledged.

Both sides map prefix -> Route (announced) or None (withdrawn). A prefix missing from `desired`
is undecided: nothing is sent for it. A prefix missing from `acked` is unknown to us (we just
started, or a command failed): a desired withdraw is then sent anyway, which is harmless when
nothing is there and removes a route an earlier instance left behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .model import Route

__all__ = ["Changes", "plan"]

UNKNOWN = object()


@dataclass(frozen=True, slots=True)
class Changes:
    announce: tuple[Route, ...] = ()
    withdraw: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.announce or self.withdraw)


def plan(desired: Mapping[str, Route | None], acked: Mapping[str, Route | None]) -> Changes:
    announce: list[Route] = []
    withdraw: list[str] = []
    for prefix, want in desired.items():
        have = acked.get(prefix, UNKNOWN)
        if want is None:
            if have is not None:
                withdraw.append(prefix)
        elif have != want:
            announce.append(want)
    return Changes(tuple(announce), tuple(withdraw))
