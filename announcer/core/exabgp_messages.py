"""Parse what ExaBGP writes to our stdin: acks, neighbor events, shutdown, anything else."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .fleet import AddPathNegotiated, ReceivedPath, RoutesReceived

__all__ = [
    "BARRIER_COMMAND",
    "Ack",
    "BarrierMark",
    "Info",
    "Malformed",
    "Message",
    "NeighborState",
    "RibRoutes",
    "Shutdown",
    "parse_line",
]


@dataclass(frozen=True, slots=True)
class Ack:
    ok: bool


# An asynchronous ExaBGP command with a fixed first line and nothing after it: `show neighbor
# summary` filtered to an address no session has. ExaBGP answers asynchronous commands (routes,
# queries) in the order it got them, so its header marks where the answers to everything sent
# before it end: the pipe closes each batch with it and counts the acks in between.
# (A synchronous command such as `version` would not do: ExaBGP answers it ahead of pending
# asynchronous ones.)
BARRIER_COMMAND = "show neighbor 0.0.0.0 summary"
_BARRIER_HEADER = "Peer            AS        up/down state"


@dataclass(frozen=True, slots=True)
class BarrierMark:
    """The first line of the answer to BARRIER_COMMAND; its `done` follows."""


@dataclass(frozen=True, slots=True)
class NeighborState:
    peer: str
    state: str  # up | down | connected
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Shutdown:
    line: str


@dataclass(frozen=True, slots=True)
class Info:
    """A well-formed line we do not act on (a version reply, a received update...)."""

    line: str


@dataclass(frozen=True, slots=True)
class RibRoutes:
    """One line of the answer to `show adj-rib out json`: the routes held for one peer."""

    peer: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Malformed:
    line: str
    error: str


Message = (
    Ack
    | BarrierMark
    | NeighborState
    | Shutdown
    | RibRoutes
    | RoutesReceived
    | AddPathNegotiated
    | Info
    | Malformed
)
_FAMILIES = frozenset({"ipv4 unicast", "ipv6 unicast"})


class _Refused(ValueError):
    """A received UPDATE's JSON is not what ExaBGP writes."""


def _numbers(value: Any, size: int, what: str) -> tuple[int, ...]:
    if (
        not isinstance(value, list)
        or len(value) != size
        or not all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**32 for n in value)
    ):
        raise _Refused(f"{what}: not {size} numbers")
    return tuple(value)


def _path_id(nlri: Any) -> tuple[str, str | None]:
    if isinstance(nlri, str):
        return nlri, None
    if not isinstance(nlri, dict) or not isinstance(nlri.get("nlri"), str):
        raise _Refused("an NLRI without a prefix")
    path_id = nlri.get("path-information")
    if path_id is not None and not isinstance(path_id, str):
        raise _Refused("path-information is not a string")
    return nlri["nlri"], path_id


def _received(peer: str, message: dict[str, Any]) -> RoutesReceived:
    """A received UPDATE (`api { receive { parsed; update; } }`, JSON encoder): the unicast
    paths announced with their communities, the (prefix, path id)s withdrawn, an End-of-RIB.
    Other families are ignored."""
    eor = message.get("eor")
    if eor is not None:
        if not isinstance(eor, dict):
            raise _Refused("eor is not an object")
        family = f"{eor.get('afi')} {eor.get('safi')}"
        return RoutesReceived(peer, end_of_rib=family if family in _FAMILIES else None)
    update = message.get("update")
    if not isinstance(update, dict):
        raise _Refused("neither update nor eor")
    attributes = update.get("attribute", {})
    if not isinstance(attributes, dict):
        raise _Refused("attribute is not an object")
    large = tuple(_numbers(c, 3, "large-community") for c in attributes.get("large-community", []))
    communities = tuple(_numbers(c, 2, "community") for c in attributes.get("community", []))
    announced = []
    for family, by_next_hop in _object(update.get("announce", {}), "announce").items():
        if family not in _FAMILIES:
            continue
        for next_hop, nlris in _object(by_next_hop, family).items():
            for nlri in _list(nlris, family):
                prefix, path_id = _path_id(nlri)
                announced.append(
                    ReceivedPath(prefix, path_id, large, communities, next_hop)  # type: ignore[arg-type]
                )
    withdrawn = []
    for family, nlris in _object(update.get("withdraw", {}), "withdraw").items():
        if family in _FAMILIES:
            withdrawn += [_path_id(nlri) for nlri in _list(nlris, family)]
    return RoutesReceived(peer, tuple(announced), tuple(withdrawn))


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Refused(f"{what} is not an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Refused(f"{what} is not a list")
    return value


def _negotiated(peer: str, negotiated: Any) -> AddPathNegotiated:
    """The session's capabilities: the families that carry path ids on what we receive."""
    body = _object(negotiated, "negotiated")
    add_path = _object(body.get("add_path", {}), "add_path")
    receive = _list(add_path.get("receive", []), "add_path.receive")
    families = body.get("families")
    carried = None if families is None else frozenset(_list(families, "families"))
    return AddPathNegotiated(peer, frozenset(f for f in receive if f in _FAMILIES), carried)


def _rib_routes(event: dict[str, object]) -> RibRoutes | Malformed | None:
    """`{"<peer>": {"routes": [{"prefix": ..., "family": ...}, ...]}}`, or None if not that."""
    if len(event) != 1:
        return None
    ((peer, body),) = event.items()
    if not isinstance(body, dict) or set(body) != {"routes"}:
        return None
    routes = body["routes"]
    if not isinstance(routes, list):
        return Malformed(str(event)[:200], "adj-rib-out answer: routes is not a list")
    prefixes = []
    for route in routes:
        prefix = route.get("prefix") if isinstance(route, dict) else None
        if not isinstance(prefix, str):
            return Malformed(str(event)[:200], "adj-rib-out answer: a route without a prefix")
        prefixes.append(prefix)
    return RibRoutes(peer, tuple(prefixes))


def _parse_json(line: str) -> Message:
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        return Malformed(line, f"invalid JSON: {exc.msg} at column {exc.colno}")
    if not isinstance(event, dict):
        return Malformed(line, "JSON event is not an object")
    kind = event.get("type")
    if kind == "state":
        neighbor = event.get("neighbor")
        if not isinstance(neighbor, dict):
            return Malformed(line, "state event without a neighbor object")
        address = neighbor.get("address")
        peer = address.get("peer") if isinstance(address, dict) else None
        state = neighbor.get("state")
        if not isinstance(peer, str) or not isinstance(state, str):
            return Malformed(line, "state event without neighbor.address.peer or state")
        reason = neighbor.get("reason", "")
        return NeighborState(peer, state, reason if isinstance(reason, str) else str(reason))
    if kind == "notification" and event.get("notification") == "shutdown":
        return Shutdown(line)
    if kind in ("update", "negotiated"):
        neighbor = event.get("neighbor")
        address = neighbor.get("address") if isinstance(neighbor, dict) else None
        peer = address.get("peer") if isinstance(address, dict) else None
        if not isinstance(peer, str) or not isinstance(neighbor, dict):
            return Malformed(line[:200], f"{kind} without neighbor.address.peer")
        try:
            if kind == "negotiated":
                return _negotiated(peer, neighbor.get("negotiated"))
            if neighbor.get("direction") != "receive":
                return Info(line)
            return _received(peer, _object(neighbor.get("message"), "message"))
        except _Refused as exc:
            return Malformed(line[:200], f"received {kind}: {exc}")
    if "answer" in event:  # the JSON ack form, in case an ExaBGP ever sends it
        return Ack(event.get("answer") == "done")
    rib = _rib_routes(event)
    if rib is not None:
        return rib
    return Info(line)


def parse_line(raw: str) -> Message:
    line = raw.strip()
    if line == "done":
        return Ack(ok=True)
    if line == "error":
        return Ack(ok=False)
    if line.startswith("{"):
        return _parse_json(line)
    if line.startswith("shutdown"):
        return Shutdown(line)
    if line.startswith(_BARRIER_HEADER):
        return BarrierMark()
    words = line.split()
    if len(words) >= 3 and words[0] == "neighbor" and words[2] in ("up", "down", "connected"):
        reason = line.split(" - ", 1)[1] if " - " in line else ""
        return NeighborState(words[1], words[2], reason)
    if not line:
        return Malformed(raw, "empty line")
    return Info(line)
