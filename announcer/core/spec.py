"""What the reducer is told about the configuration: plain frozen values, no pydantic.

The shell turns a validated `Config` into a `Spec` (`announcer.specs.spec_from_config`); the
reducer only ever sees these, so it can be driven by tests and simulations without files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .addresses import AddressGuard, address_present, host_address
from .dampening import DampeningPolicy
from .drain import DrainTiming
from .fleet import FleetSpec, VipFleet
from .model import Route

__all__ = ["CheckSpec", "Policy", "Spec", "VipSpec", "WeightSpec"]


@dataclass(frozen=True, slots=True)
class CheckSpec:
    rise: int = 3
    fall: int = 3
    ttl_s: float = 3.5  # a verdict (or an unknown state) older than this counts as down
    # the cadence: the reducer says when each check is probed next (`NextProbe`)
    interval_s: float = 1.0  # settled
    fast_interval_s: float = 0.05  # confirming a rise, or a failure that could be a moment
    confirm_interval_s: float = 0.02  # confirming a failure the service stated
    timeout_s: float = 0.5  # a probe that takes longer fails (the runner's deadline)


@dataclass(frozen=True, slots=True)
class WeightSpec:
    asn: int
    bandwidth_mbps: float
    from_check: str | None = None
    steps: int = 10


@dataclass(frozen=True, slots=True)
class VipSpec:
    prefix: str
    checks: tuple[str, ...]
    required: int
    route: Route  # the route when healthy, before drain and weight are added
    weight: WeightSpec | None = None
    # the configuration's default is REQUIRE; plain specs (tests, simulations) ignore it
    address: AddressGuard = AddressGuard.IGNORE
    fleet: VipFleet = field(default_factory=VipFleet)
    # the address of a host route, parsed once (decisions ask for it on every probe result)
    host: str | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "host", host_address(self.prefix))

    def on_host(self, addresses: frozenset[str] | None) -> bool:
        """Whether the host holds this VIP's address (unknown addresses: no)."""
        return address_present(self.prefix, addresses, self.host)


@dataclass(frozen=True, slots=True)
class Policy:
    dampening: DampeningPolicy | None = field(default_factory=DampeningPolicy)  # None: off
    min_announce_interval_s: float = 0.0
    drain: DrainTiming = field(default_factory=lambda: DrainTiming(10.0))
    connections_check: str | None = None
    # a gap this long between two events means the plugin itself was not running (ticks come
    # every 0.25 s): a suspended process, a paused VM, a blocked event loop
    stall_after_s: float = 1.0


@dataclass(frozen=True, slots=True)
class Spec:
    checks: Mapping[str, CheckSpec]
    vips: tuple[VipSpec, ...]
    policy: Policy = field(default_factory=Policy)
    neighbors: tuple[str, ...] = ()  # the configured BGP peers (reported even before a state)
    # peers that get this host's routes only while its BFD session to them is up (`bfd:` with
    # the gate on); when any is, every command names its peer
    bfd_gated: frozenset[str] = frozenset()
    fleet: FleetSpec | None = None  # None: no fleet view, no tags (as without `fleet:`)
    # indexes, derived once per configuration
    by_prefix: Mapping[str, VipSpec] = field(init=False, compare=False, repr=False)
    position: Mapping[str, int] = field(init=False, compare=False, repr=False)
    vips_of_check: Mapping[str, tuple[str, ...]] = field(init=False, compare=False, repr=False)
    weighted_by: Mapping[str, tuple[str, ...]] = field(init=False, compare=False, repr=False)
    # the VIPs announced over stable next hops: their path ids (what a withdraw removes)
    path_ids: Mapping[str, tuple[int, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        by_check: dict[str, list[str]] = {name: [] for name in self.checks}
        weighted: dict[str, list[str]] = {name: [] for name in self.checks}
        for vip in self.vips:
            for name in vip.checks:
                by_check.setdefault(name, []).append(vip.prefix)
            if vip.weight is not None and vip.weight.from_check is not None:
                weighted.setdefault(vip.weight.from_check, []).append(vip.prefix)
        object.__setattr__(self, "by_prefix", {vip.prefix: vip for vip in self.vips})
        object.__setattr__(self, "position", {vip.prefix: i for i, vip in enumerate(self.vips)})
        object.__setattr__(self, "vips_of_check", {k: tuple(v) for k, v in by_check.items()})
        object.__setattr__(self, "weighted_by", {k: tuple(v) for k, v in weighted.items() if v})
        paths = {vip.prefix: tuple(p for p, _ in vip.route.paths) for vip in self.vips}
        object.__setattr__(self, "path_ids", {k: v for k, v in paths.items() if v})
