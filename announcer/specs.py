"""From the validated configuration to the reducer's `Spec` (the core never sees pydantic)."""

from __future__ import annotations

from .config import CheckConfig, Config, VipConfig
from .core import (
    AddressGuard,
    CheckSpec,
    DampeningPolicy,
    DrainTiming,
    FleetSpec,
    Policy,
    Route,
    Spec,
    Threshold,
    VipFleet,
    VipSpec,
    WeightSpec,
    base_route,
)
from .core.fleet import host_id

__all__ = ["check_spec", "fleet_spec", "route_for", "spec_from_config", "threshold", "vip_spec"]


def check_spec(check: CheckConfig) -> CheckSpec:
    return CheckSpec(
        rise=check.rise,
        fall=check.fall,
        ttl_s=check.ttl_s,
        interval_s=check.interval,
        fast_interval_s=check.fast_interval,
        confirm_interval_s=check.confirm_interval,
        timeout_s=check.timeout,
    )


def route_for(
    vip: VipConfig, local_as: int | None, slots: tuple[tuple[int, str], ...] = ()
) -> Route:
    return base_route(
        vip.prefix,
        next_hop=vip.next_hop,
        med=vip.med,
        origin=vip.origin,
        local_as=local_as,
        as_path_prepend=vip.as_path_prepend,
        communities=tuple(vip.communities),
        large_communities=tuple(vip.large_communities),
        extended_communities=tuple(vip.extended_communities),
        paths=slots,
    )


def threshold(value: int | str | None) -> Threshold | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Threshold(percent=float(value.rstrip("%")))
    return Threshold(count=value)


def vip_fleet(config: Config, vip: VipConfig) -> VipFleet:
    """The VIP's own thresholds, else the fleet: section's."""
    if config.fleet is None:
        return VipFleet()
    own = vip.fleet
    min_serving = own.min_serving if own and own.min_serving is not None else None
    drain = own.drain_min_serving if own and own.drain_min_serving is not None else None
    return VipFleet(
        threshold(min_serving if min_serving is not None else config.fleet.min_serving),
        threshold(drain if drain is not None else config.fleet.drain_min_serving),
    )


def fleet_spec(config: Config) -> FleetSpec | None:
    fleet = config.fleet
    if fleet is None or config.bgp is None:
        return None
    return FleetSpec(
        host_id=host_id(config.bgp.router_id),
        community_asn=fleet.community_asn,
        settle_s=fleet.settle,
        panic_exit_s=fleet.panic_exit,
        view_after_s=fleet.view_after,
    )


def vip_spec(
    vip: VipConfig,
    local_as: int | None,
    address: str = "ignore",
    fleet: VipFleet | None = None,
    slots: tuple[tuple[int, str], ...] = (),
) -> VipSpec:
    weight = None
    if vip.weight is not None:
        weight = WeightSpec(
            asn=vip.weight.asn or local_as or 0,
            bandwidth_mbps=vip.weight.bandwidth_mbps,
            from_check=vip.weight.from_check,
            steps=vip.weight.steps,
        )
    return VipSpec(
        prefix=vip.prefix,
        checks=tuple(vip.checks),
        required=vip.required_count(),
        route=route_for(vip, local_as, slots),
        weight=weight,
        address=AddressGuard(address),
        fleet=fleet or VipFleet(),
    )


def spec_from_config(config: Config) -> Spec:
    local_as = config.bgp.local_as if config.bgp else None
    d = config.dampening
    drain = config.drain
    policy = Policy(
        dampening=DampeningPolicy(d.penalty, d.half_life, d.suppress, d.reuse, d.max_suppress)
        if d.enabled
        else None,
        min_announce_interval_s=d.min_announce_interval,
        drain=DrainTiming(drain.gshut_period, drain.connections_below, drain.max_wait),
        connections_check=drain.connections_check,
    )
    return Spec(
        checks={name: check_spec(check) for name, check in config.checks.items()},
        vips=tuple(
            vip_spec(
                vip,
                local_as,
                config.address_mode(vip),
                vip_fleet(config, vip),
                tuple((slot.vrid, slot.address) for slot in config.stable_slots(vip)),
            )
            for vip in config.vips
        ),
        policy=policy,
        neighbors=tuple(n.address for n in config.bgp.neighbors) if config.bgp else (),
        bfd_gated=frozenset(
            n.address
            for n in (config.bgp.neighbors if config.bgp else ())
            if n.bfd is not None and n.bfd.gate
        ),
        fleet=fleet_spec(config),
    )
