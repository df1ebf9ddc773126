"""The reload transaction's first half: everything that can fail, done before anything
changes. Parse and validate the file (off the event loop), read the token again, build every
new or changed probe, assign the addresses of new `manage` VIPs. Any problem refuses the whole
reload with its located problems (`AnnouncerError`), and the running configuration stays; the
plugin then switches with `Prepared`, a step that cannot fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from healthchecks import Probe

from ..config import Config, load_config
from ..probing.build import build_all
from ..secrets import read_token
from .checks import RunningChecks

__all__ = ["Prepared", "prepare"]


@dataclass(frozen=True, slots=True)
class Prepared:
    config: Config
    changed: list[str]  # the checks whose probe is new or defined anew (their state resets)
    probes: dict[str, Probe]  # built, for exactly those
    token: str | None


async def prepare(
    path: str, checks: RunningChecks, assign: Callable[[Config], Awaitable[None]]
) -> Prepared:
    """Everything a reload needs, or AnnouncerError (with nothing left open or assigned)."""
    # off the event loop: a large file takes seconds to parse, and probes, acks and the API
    # must go on meanwhile (the parse is bounded in size and alias expansion)
    config = await asyncio.to_thread(load_config, path)
    changed = checks.changed(config)
    # the token is re-read, so a rotated one takes effect; an unusable one is refused
    token = read_token(config.api.token_file) if config.api.token_file else None
    probes = await build_all(config.checks, changed, checks.pools)
    try:
        # the last step that can fail (all or nothing itself)
        await assign(config)
    except BaseException:
        for probe in probes.values():
            await probe.close()
        raise
    return Prepared(config, changed, probes, token)
