"""Render routes into ExaBGP text API commands (one line each, no newline).

Every token is checked against a strict character set: whatever the config validation let
through, nothing that could end a line or start another command reaches ExaBGP's stdin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import groupby

from .errors import AnnouncerError
from .model import Route

__all__ = [
    "UnsafeToken",
    "announce_command",
    "attribute_tokens",
    "batch_commands",
    "withdraw_command",
]

_SAFE_TOKEN = re.compile(r"[A-Za-z0-9:./_-]+")
# ExaBGP parses one line per command; keep lines short enough for its reader
MAX_PREFIXES_PER_COMMAND = 100


class UnsafeToken(AnnouncerError, ValueError):
    """A value that must never be written to ExaBGP."""


def _safe(token: str) -> str:
    if not _SAFE_TOKEN.fullmatch(token):
        raise UnsafeToken(f"refusing to send {token!r} to ExaBGP")
    return token


def _list(keyword: str, values: Sequence[str]) -> list[str]:
    if not values:
        return []
    return [keyword, "[", *(_safe(v) for v in values), "]"]


def attribute_tokens(route: Route) -> list[str]:
    """The attributes of a route in a fixed order (so equal routes render identically)."""
    tokens = ["next-hop", _safe(route.next_hop), "med", str(int(route.med))]
    tokens += ["origin", _safe(route.origin)]
    tokens += _list("as-path", [str(int(asn)) for asn in route.as_path])
    tokens += _list("community", route.communities)
    tokens += _list("large-community", route.large_communities)
    tokens += _list("extended-community", route.extended_communities)
    return tokens


def announce_command(route: Route) -> str:
    return " ".join(["announce", "route", _safe(route.prefix), *attribute_tokens(route)])


def withdraw_command(prefix: str) -> str:
    return f"withdraw route {_safe(prefix)}"


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), MAX_PREFIXES_PER_COMMAND):
        yield items[start : start + MAX_PREFIXES_PER_COMMAND]


def batch_commands(
    announce: Sequence[Route], withdraw: Sequence[str], neighbor: str | None = None
) -> list[tuple[str, tuple[str, ...]]]:
    """Commands for many changes at once, with the prefixes each one covers.

    Routes that share every attribute go into one `announce attributes ... nlri P1 P2 ...`,
    so a thousand VIPs turning healthy together cost ExaBGP a few commands, not a thousand.
    With `neighbor`, each command goes to that BGP peer alone (`neighbor ADDRESS ...`).
    """
    commands = _batch(announce, withdraw)
    if neighbor is None:
        return commands
    selector = f"neighbor {_safe(neighbor)} "
    return [(selector + line, covered) for line, covered in commands]


def _batch(announce: Sequence[Route], withdraw: Sequence[str]) -> list[tuple[str, tuple[str, ...]]]:
    commands: list[tuple[str, tuple[str, ...]]] = []

    def group_key(route: Route) -> tuple[bool, tuple[str, ...]]:
        return route.is_ipv6, tuple(attribute_tokens(route))

    for (_, attributes), group in groupby(sorted(announce, key=group_key), key=group_key):
        prefixes = [route.prefix for route in group]
        for chunk in _chunks(prefixes):
            if len(chunk) == 1:
                line = " ".join(["announce", "route", _safe(chunk[0]), *attributes])
            else:
                line = " ".join(
                    ["announce", "attributes", *attributes, "nlri", *(_safe(p) for p in chunk)]
                )
            commands.append((line, tuple(chunk)))
    by_family = sorted(withdraw, key=lambda prefix: ":" in prefix)
    for _, group_iter in groupby(by_family, key=lambda prefix: ":" in prefix):
        for chunk in _chunks(list(group_iter)):
            if len(chunk) == 1:
                commands.append((withdraw_command(chunk[0]), tuple(chunk)))
            else:
                # ExaBGP's withdraw needs a next-hop to parse the bulk form; the RIB key ignores it
                next_hop = "::1" if ":" in chunk[0] else "0.0.0.0"
                line = " ".join(
                    ["withdraw", "attributes", "next-hop", next_hop, "nlri", *map(_safe, chunk)]
                )
                commands.append((line, tuple(chunk)))
    return commands
