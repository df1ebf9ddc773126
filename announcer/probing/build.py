"""Build the probe objects of a configuration, all or nothing.

Building can fail where validation cannot see (an `https` check whose `ca_file` is missing or
unreadable). At start-up such a check becomes a failing check (`reason: probe_error`), never a
crash that takes the healthy VIPs down with it; at reload the whole reload is refused and the
running configuration stays, so a reload can never half-apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from healthchecks import (
    ConnectionPools,
    Endpoint,
    Probe,
    ProbeFailure,
    ProbeResult,
    Reason,
    build_probe,
    endpoint_of,
)

from ..config import CheckConfig
from ..core.errors import AnnouncerError

__all__ = [
    "BrokenProbe",
    "ProbeBuildError",
    "build_all",
    "build_or_broken",
    "watched_endpoint",
]


class BrokenProbe:
    """Stands for a probe that could not be built: every run fails with `probe_error`."""

    def __init__(self, error: str) -> None:
        self.error = error

    async def probe(self) -> ProbeResult:
        raise ProbeFailure(Reason.PROBE_ERROR, self.error)

    async def close(self) -> None:
        return None


class ProbeBuildError(AnnouncerError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self._problems = problems

    @property
    def problems(self) -> list[str]:
        return self._problems


def _build(name: str, check: CheckConfig, pools: ConnectionPools | None) -> Probe:
    try:
        return build_probe(check.probe, pools)
    except Exception as exc:  # whatever the probe's constructor raised: report, never crash
        raise ProbeBuildError([f"checks.{name}: cannot build the probe: {exc}"]) from exc


def watched_endpoint(check: CheckConfig) -> Endpoint | None:
    """Where the check's idle connection is held (`watch: true` and a probe with an
    endpoint: not an exec check), or None."""
    return endpoint_of(check.probe) if check.watch else None


def build_or_broken(name: str, check: CheckConfig, pools: ConnectionPools | None = None) -> Probe:
    try:
        return _build(name, check, pools)
    except ProbeBuildError as exc:
        return BrokenProbe(exc.problems[0])


async def build_all(
    checks: Mapping[str, CheckConfig],
    names: Iterable[str],
    pools: ConnectionPools | None = None,
) -> dict[str, Probe]:
    """Every named probe, or ProbeBuildError with every problem (nothing is left open)."""
    built: dict[str, Probe] = {}
    problems: list[str] = []
    for name in names:
        try:
            built[name] = _build(name, checks[name], pools)
        except ProbeBuildError as exc:
            problems.extend(exc.problems)
    if problems:
        for probe in built.values():
            await probe.close()
        raise ProbeBuildError(problems)
    return built
