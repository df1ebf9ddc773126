"""When the plugin gives back an address it assigned (`address: manage`): the hand-over rule.

An address is removed only once nothing can still send traffic to it: its VIP is no longer
managed by this configuration, ExaBGP has acknowledged the withdraw of its route, and that has
been so for `linger` without a break (ExaBGP's healthcheck issue #993: removed earlier, the
packets still on their way meet refused connections). A VIP still configured but no longer
managed is handed over to the operator: the address stays and is no longer ours. At stop, only
addresses whose withdraw was acknowledged (or whose ExaBGP is gone) are removed.

Pure: the keeper (app/address_keeper.py) asks, then does the removals it is told.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass

__all__ = ["OwnedAddress", "Release", "at_stop", "due"]


@dataclass(frozen=True, slots=True)
class OwnedAddress:
    interface: str
    # since when it has been unwanted with its withdraw acknowledged, without a break
    unwanted_since: float | None = None


@dataclass(frozen=True, slots=True)
class Release:
    owned: Mapping[str, OwnedAddress]  # still ours afterwards
    remove: tuple[tuple[str, str], ...] = ()  # (address, interface), to remove now
    handed_over: tuple[str, ...] = ()  # configured, no longer managed: the operator's now


def due(
    owned: Mapping[str, OwnedAddress],
    managed: Set[str],
    configured: Set[str],
    withdrawn: Set[str],
    now: float,
    linger_s: float,
) -> Release:
    """What to do with the addresses we own, now. `managed`: the addresses this configuration
    manages; `configured`: every VIP's address; `withdrawn`: those whose route ExaBGP has
    acknowledged as withdrawn."""
    kept: dict[str, OwnedAddress] = {}
    remove: list[tuple[str, str]] = []
    handed_over: list[str] = []
    for address, entry in owned.items():
        if address in managed:
            kept[address] = OwnedAddress(entry.interface)
        elif address in configured:
            handed_over.append(address)
        elif address not in withdrawn:
            # a route that may still be out there keeps its address; the linger starts over
            kept[address] = OwnedAddress(entry.interface)
        else:
            since = now if entry.unwanted_since is None else entry.unwanted_since
            if now - since >= linger_s:
                remove.append((address, entry.interface))
            else:
                kept[address] = OwnedAddress(entry.interface, since)
    return Release(kept, tuple(remove), tuple(handed_over))


def at_stop(owned: Mapping[str, OwnedAddress], withdrawn: Set[str], exabgp_gone: bool) -> Release:
    """After the last-resort withdraw: remove what was acknowledged as withdrawn (everything
    when ExaBGP is gone: its routes went with it); keep the rest."""
    kept = {a: e for a, e in owned.items() if not exabgp_gone and a not in withdrawn}
    remove = tuple((a, e.interface) for a, e in owned.items() if a not in kept)
    return Release(kept, remove)
