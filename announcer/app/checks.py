"""The running checks: one runner (and task) per check that a VIP uses, what each was built
from, and the endpoints' shared idle-connection watchers.

The runners decide nothing: each result goes to the sink, and the reducer's `NextProbe` comes
back here to arm the check's next probe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from healthchecks import ConnectionPools, Probe

from ..config import CheckConfig, Config
from ..core import NextProbe
from ..probing.build import watched_endpoint
from ..probing.scheduler import CheckRunner, ResultSink, Watchers, burst_spread_s, wake_spread
from ..specs import check_spec

__all__ = ["RunningChecks", "used_checks"]


def used_checks(config: Config) -> list[str]:
    """The checks some VIP uses (only those run)."""
    return sorted({name for vip in config.vips for name in vip.checks})


class RunningChecks:
    def __init__(self, sink: ResultSink) -> None:
        self._sink = sink
        self.runners: dict[str, CheckRunner] = {}
        self.watchers = Watchers()
        # the HTTP checks of one endpoint share its kept-alive connections (the probes are
        # built with these pools; they live as long as the running checks)
        self.pools = ConnectionPools()
        self._built_from: dict[str, CheckConfig] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def changed(self, config: Config) -> list[str]:
        """The checks `config` uses that run from another definition, or not at all."""
        return [
            name
            for name in used_checks(config)
            if self._built_from.get(name) != config.checks[name]
        ]

    def stop_unwanted(self, config: Config, changed: list[str]) -> None:
        """Stop the runners of checks `config` no longer uses, or defines anew (before the
        reducer resets them: no result of the old definition is counted for the new)."""
        used = set(used_checks(config))
        for name in list(self.runners):
            if name not in used or name in changed:
                self._tasks.pop(name).cancel()
                del self.runners[name], self._built_from[name]

    def start(self, group: asyncio.TaskGroup, config: Config, probes: Mapping[str, Probe]) -> None:
        """Run the given probes (new or changed checks), in the task group."""
        spread = burst_spread_s(len(probes), float("inf"))
        for name in sorted(probes):
            check = config.checks[name]
            runner = CheckRunner(
                name,
                check_spec(check),
                probes[name],
                self._sink,
                self.watchers,
                watched_endpoint(check),
                spread,
            )
            self.runners[name] = runner
            self._built_from[name] = check
            self._tasks[name] = group.create_task(runner.run(), name=f"check:{name}")

    def next_probe(self, effect: NextProbe) -> None:
        runner = self.runners.get(effect.check)
        if runner is not None:
            runner.probe_at(effect.after, effect.at)

    def probe_now(self, names: tuple[str, ...] | None = None) -> None:
        """Probe these checks (all: None) now: at once where they are few, spread over
        `PER_PROBE_SPREAD_S` each where there are thousands (`wake_spread`)."""
        wanted = self.runners if names is None else names
        wake_spread([self.runners[name] for name in wanted if name in self.runners], 0.0)

    def close(self) -> None:
        self.watchers.close()
        self.pools.close()

    def __len__(self) -> int:
        return len(self.runners)
