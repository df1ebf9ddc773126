"""Parse what ExaBGP writes to our stdin: acks, neighbor events, shutdown, anything else."""

from __future__ import annotations

import json
from dataclasses import dataclass

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


Message = Ack | BarrierMark | NeighborState | Shutdown | RibRoutes | Info | Malformed


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
