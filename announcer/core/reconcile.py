"""The second pure machine: what ExaBGP acknowledged, and what to send to make it match.

`desired` maps prefix -> Route (announce) or None (withdraw); a prefix missing from it is
undecided and nothing is sent for it. The `Ledger` maps what ExaBGP acknowledged the same way;
a prefix missing from it is unknown (we just started, re-stated, or a command failed or was not
answered), so a desired withdraw is sent anyway: harmless when nothing is there, and it removes
a route an earlier instance left behind.

The reconciler in the shell only does I/O around these functions: `plan` a batch, send it,
fold the answers back with `answered`; `restated` after a session comes up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .model import Route

__all__ = [
    "Changes",
    "Ledger",
    "answered",
    "combined",
    "plan",
    "plan_views",
    "restated",
    "route_views",
]

_UNKNOWN = object()


@dataclass(frozen=True, slots=True)
class Changes:
    announce: tuple[Route, ...] = ()
    withdraw: tuple[str, ...] = ()
    # (prefix, path id; None: the plain path) that a re-announced route no longer has: its
    # stable next hops changed (a reload), so ExaBGP would keep the old path beside the new
    stale: tuple[tuple[str, int | None], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.announce or self.withdraw or self.stale)


@dataclass(frozen=True, slots=True)
class Ledger:
    acked: Mapping[str, Route | None] = field(default_factory=dict)
    # bumped by `restated`: answers to commands sent before it describe a RIB that is gone
    epoch: int = 0
    errors: int = 0


def plan(desired: Mapping[str, Route | None], acked: Mapping[str, Route | None]) -> Changes:
    announce: list[Route] = []
    withdraw: list[str] = []
    stale: list[tuple[str, int | None]] = []
    for prefix, want in desired.items():
        have = acked.get(prefix, _UNKNOWN)
        if want is None:
            if have is not None:
                withdraw.append(prefix)
        elif have != want:
            announce.append(want)
            if isinstance(have, Route) and have.paths != want.paths:
                stale += _dropped_paths(have, want)
    return Changes(tuple(announce), tuple(withdraw), tuple(stale))


def _paths(route: Route) -> set[int | None]:
    return {path_id for path_id, _ in route.paths} if route.paths else {None}


def _dropped_paths(have: Route, want: Route) -> list[tuple[str, int | None]]:
    dropped = _paths(have) - _paths(want)
    return [(have.prefix, path_id) for path_id in sorted(dropped, key=lambda p: p or 0)]


def answered(
    ledger: Ledger,
    sent: Sequence[Sequence[tuple[str, Route | None]]],
    results: Sequence[bool | None],
    epoch: int,
) -> Ledger:
    """Fold ExaBGP's answers into the ledger.

    `sent` holds, per command, what it set each prefix it covered to (None: withdrawn);
    `results` is True for `done`, False for `error`, None for no answer in time. A failed or
    unanswered prefix becomes unknown, so the next plan sends it again.
    """
    if epoch != ledger.epoch:
        return ledger
    acked = dict(ledger.acked)
    errors = ledger.errors
    failed: list[str] = []
    for covered, result in zip(sent, results, strict=True):
        if result is not True:
            errors += 1
            failed += (prefix for prefix, _ in covered)
            continue
        for prefix, value in covered:
            acked[prefix] = value
    # a route with several paths takes several commands: known only when all of them went
    for prefix in failed:
        acked.pop(prefix, None)
    return Ledger(acked, ledger.epoch, errors)


# A view's target: a BGP peer's address, or None for "every peer" (commands without a selector)
Target = str | None


def route_views(
    desired: Mapping[str, Route | None],
    neighbors: Sequence[str],
    gated: frozenset[str],
    withheld: frozenset[str],
) -> dict[Target, Mapping[str, Route | None]]:
    """What each peer must be sent. Without gated peers, one view for every peer (the plain
    commands). With any, one view per configured peer: the desired set, or, for a peer that
    is withheld (its BFD session is not up), every decided prefix withdrawn."""
    if not gated:
        return {None: desired}
    views: dict[Target, Mapping[str, Route | None]] = {}
    nothing: Mapping[str, Route | None] | None = None
    for peer in neighbors:
        if peer in withheld:
            if nothing is None:
                nothing = dict.fromkeys(desired)
            views[peer] = nothing
        else:
            views[peer] = desired
    return views


def plan_views(
    views: Mapping[Target, Mapping[str, Route | None]], ledgers: Mapping[Target, Ledger]
) -> list[tuple[Target, tuple[Target, ...], Changes]]:
    """What to send, as (selector, the targets whose ledgers it answers for, changes). When
    every peer needs the very same changes (nobody withheld, every ledger in step: the usual
    case), one batch of plain commands serves them all: a peer's view costs ExaBGP nothing
    extra. Otherwise each peer gets its own batch, its commands naming it."""
    planned = [(target, plan(desired, ledgers[target].acked)) for target, desired in views.items()]
    if len(planned) > 1 and all(changes and changes == planned[0][1] for _, changes in planned):
        return [(None, tuple(views), planned[0][1])]
    return [(target, (target,), changes) for target, changes in planned if changes]


def combined(ledgers: Mapping[Target, Ledger]) -> dict[str, Route | None]:
    """What ExaBGP holds for a prefix across every peer: the route where any peer has it,
    None when every peer's withdraw is acknowledged, absent while any peer's is unknown."""
    if len(ledgers) == 1:
        return dict(next(iter(ledgers.values())).acked)
    result: dict[str, Route | None] = {}
    acked = [ledger.acked for ledger in ledgers.values()]
    for prefix in set().union(*acked) if acked else ():
        values = [held.get(prefix, _UNKNOWN) for held in acked]
        if any(value is _UNKNOWN for value in values):
            continue
        routes = [value for value in values if value is not None]
        result[prefix] = routes[0] if routes else None  # type: ignore[assignment]
    return result


def restated(ledger: Ledger) -> Ledger:
    """Forget what ExaBGP acknowledged: everything decided is sent again."""
    return Ledger({}, ledger.epoch + 1, ledger.errors)
