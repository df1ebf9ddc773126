"""Render routes into ExaBGP text API commands (one line each, no newline).

Every token is checked against a strict character set: whatever the config validation let
through, nothing that could end a line or start another command reaches ExaBGP's stdin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from .errors import AnnouncerError
from .model import Route

__all__ = [
    "PathIds",
    "UnsafeToken",
    "announce_command",
    "announce_commands",
    "attribute_tokens",
    "batch_commands",
    "withdraw_command",
    "withdraw_commands",
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


def attribute_tokens(route: Route, next_hop: str | None = None) -> list[str]:
    """The attributes of a route in a fixed order (so equal routes render identically);
    `next_hop` replaces the route's own (one of its stable next-hop paths)."""
    tokens = ["next-hop", _safe(next_hop or route.next_hop), "med", str(int(route.med))]
    tokens += ["origin", _safe(route.origin)]
    tokens += _list("as-path", [str(int(asn)) for asn in route.as_path])
    tokens += _list("community", route.communities)
    tokens += _list("large-community", route.large_communities)
    tokens += _list("extended-community", route.extended_communities)
    return tokens


def _path_tokens(path_id: int | None) -> list[str]:
    return [] if path_id is None else ["path-information", str(int(path_id))]


def _path_attributes(route: Route) -> list[tuple[int | None, list[str]]]:
    """Per path the route has: its path id (None: the one path of a plain route) and its
    attribute tokens, path id first."""
    if not route.paths:
        return [(None, attribute_tokens(route))]
    return [
        (path_id, _path_tokens(path_id) + attribute_tokens(route, slot))
        for path_id, slot in route.paths
    ]


def announce_command(route: Route) -> str:
    """The command for a plain route (one path); see `announce_commands` for any route."""
    return " ".join(["announce", "route", _safe(route.prefix), *attribute_tokens(route)])


def announce_commands(route: Route) -> list[str]:
    """One command per path: one for a plain route, one per slot with stable next hops."""
    prefix = _safe(route.prefix)
    return [
        " ".join(["announce", "route", prefix, *tokens]) for _, tokens in _path_attributes(route)
    ]


def withdraw_command(prefix: str, path_id: int | None = None) -> str:
    return " ".join(["withdraw", "route", _safe(prefix), *_path_tokens(path_id)])


def withdraw_commands(prefix: str, path_ids: Sequence[int] = ()) -> list[str]:
    """The withdraw of every path of a prefix (its path ids; none: the plain path)."""
    if not path_ids:
        return [withdraw_command(prefix)]
    return [withdraw_command(prefix, path_id) for path_id in path_ids]


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), MAX_PREFIXES_PER_COMMAND):
        yield items[start : start + MAX_PREFIXES_PER_COMMAND]


# which paths of a prefix a withdraw removes: its path ids (none: the plain path)
PathIds = Mapping[str, Sequence[int]]
_NO_PATHS: PathIds = {}


def batch_commands(
    announce: Sequence[Route],
    withdraw: Sequence[str],
    neighbor: str | None = None,
    path_ids: PathIds = _NO_PATHS,
    stale: Sequence[tuple[str, int | None]] = (),
) -> list[tuple[str, tuple[str, ...]]]:
    """Commands for many changes at once, with the prefixes each one covers.

    Routes that share every attribute go into one `announce attributes ... nlri P1 P2 ...`,
    so a thousand VIPs turning healthy together cost ExaBGP a few commands, not a thousand.
    A route with stable next hops is one path per slot (`path-information N next-hop SLOT`),
    grouped likewise per path; a withdrawn prefix loses every path in `path_ids`, and each
    `stale` (prefix, path id) is withdrawn on its own (a path a changed route no longer has).
    With `neighbor`, each command goes to that BGP peer alone (`neighbor ADDRESS ...`).
    """
    commands = _batch(announce, withdraw, path_ids, stale)
    if neighbor is None:
        return commands
    selector = f"neighbor {_safe(neighbor)} "
    return [(selector + line, covered) for line, covered in commands]


def _batch(
    announce: Sequence[Route],
    withdraw: Sequence[str],
    path_ids: PathIds,
    stale: Sequence[tuple[str, int | None]],
) -> list[tuple[str, tuple[str, ...]]]:
    commands: list[tuple[str, tuple[str, ...]]] = []
    # (is IPv6, attribute tokens with the path id first) -> prefixes
    announced: dict[tuple[bool, tuple[str, ...]], list[str]] = {}
    for route in announce:
        for _, tokens in _path_attributes(route):
            announced.setdefault((route.is_ipv6, tuple(tokens)), []).append(route.prefix)
    for (_, attributes), prefixes in sorted(announced.items()):
        for chunk in _chunks(prefixes):
            if len(chunk) == 1:
                line = " ".join(["announce", "route", _safe(chunk[0]), *attributes])
            else:
                line = " ".join(
                    ["announce", "attributes", *attributes, "nlri", *(_safe(p) for p in chunk)]
                )
            commands.append((line, tuple(chunk)))
    # (is IPv6, path id) -> prefixes
    withdrawn: dict[tuple[bool, int], list[str]] = {}
    for prefix in withdraw:
        for path_id in path_ids.get(prefix) or (-1,):
            withdrawn.setdefault((":" in prefix, path_id), []).append(prefix)
    for prefix, stale_id in stale:
        key = (":" in prefix, -1 if stale_id is None else stale_id)
        withdrawn.setdefault(key, []).append(prefix)
    for (is_ipv6, path_id), prefixes in sorted(withdrawn.items()):
        path = _path_tokens(None if path_id < 0 else path_id)
        for chunk in _chunks(prefixes):
            if len(chunk) == 1:
                commands.append(
                    (" ".join(["withdraw", "route", _safe(chunk[0]), *path]), tuple(chunk))
                )
                continue
            # ExaBGP's withdraw needs a next-hop to parse the bulk form; the RIB key ignores it
            next_hop = "::1" if is_ipv6 else "0.0.0.0"
            line = " ".join(
                ["withdraw", "attributes", *path, "next-hop", next_hop, "nlri", *map(_safe, chunk)]
            )
            commands.append((line, tuple(chunk)))
    return commands
