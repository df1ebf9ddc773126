"""The configuration file: pydantic v2 models, loading, and errors located by field path.

Structure and values are checked by the models; rules that span sections (a VIP naming a check
that does not exist, an IPv6 VIP with no IPv6 session for `next-hop self`) by `cross_check`.
Either way every problem comes back as `path: message`, all of them at once.
"""

from __future__ import annotations

import gc
import ipaddress
import re
import reprlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from healthchecks import (
    ExecProbeConfig,
    HaproxyProbeConfig,
    HttpProbeConfig,
    NginxProbeConfig,
    ProbeConfig,
    TcpProbeConfig,
)

from .core.errors import AnnouncerError
from .durations import Duration

__all__ = [
    "ApiConfig",
    "BfdConfig",
    "BfddConfig",
    "BgpConfig",
    "CheckConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DampeningConfig",
    "DrainConfig",
    "ExabgpConfig",
    "NeighborConfig",
    "SlotConfig",
    "StableNextHopsConfig",
    "VipConfig",
    "WeightConfig",
    "load_config",
    "parse_config",
]

MAX_ASN = 2**32 - 1
# At most this many VIPs and checks: checked before any of them is validated, so that a file
# of a million wrong entries costs a millisecond, not a million error messages.
MAX_ENTRIES = 50_000
# At most this many problems are listed (the count says how many there were).
MAX_ISSUES = 100
_WELL_KNOWN_COMMUNITIES = (
    "no-export",
    "no-advertise",
    "no-export-subconfed",
    "nopeer",
    "blackhole",
)
_STANDARD_COMMUNITY = re.compile(r"(\d{1,5}):(\d{1,5})")
_LARGE_COMMUNITY = re.compile(r"(\d{1,10}):(\d{1,10}):(\d{1,10})")
_EXTENDED_COMMUNITY = re.compile(r"(target|origin):([0-9.]{1,15}):(\d{1,10})")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_standard_community(value: str) -> str:
    if value in _WELL_KNOWN_COMMUNITIES:
        return value
    match = _STANDARD_COMMUNITY.fullmatch(value)
    if not match or any(int(part) > 65535 for part in match.groups()):
        raise ValueError(
            f"{value!r} is not a community: ASN:VALUE with each part 0-65535, or one of "
            + ", ".join(_WELL_KNOWN_COMMUNITIES)
        )
    return value


def _check_large_community(value: str) -> str:
    match = _LARGE_COMMUNITY.fullmatch(value)
    if not match or any(int(part) > MAX_ASN for part in match.groups()):
        raise ValueError(f"{value!r} is not a large community: A:B:C with each part 0-4294967295")
    return value


def _check_extended_community(value: str) -> str:
    match = _EXTENDED_COMMUNITY.fullmatch(value)
    problem = f"{value!r} is not an extended community: target:ASN:N, origin:ASN:N or target:IP:N"
    if not match:
        raise ValueError(problem + " (link bandwidth goes in `weight`)")
    _, admin, number = match.groups()
    if "." in admin:
        try:
            ipaddress.IPv4Address(admin)
        except ValueError:
            raise ValueError(problem) from None
        limit = 65535
    else:
        limit = 65535 if int(admin) > 65535 else MAX_ASN
        if int(admin) > MAX_ASN:
            raise ValueError(problem)
    if int(number) > limit:
        raise ValueError(f"{value!r}: the local part must be at most {limit} with that admin field")
    return value


Community = Annotated[str, AfterValidator(_check_standard_community)]
LargeCommunity = Annotated[str, AfterValidator(_check_large_community)]
ExtendedCommunity = Annotated[str, AfterValidator(_check_extended_community)]
Asn = Annotated[int, Field(ge=1, le=MAX_ASN)]


# what a written address or prefix may contain: no IPv6 scope id ("%eth0"), no space, nothing
# that could end a line or a statement in an ExaBGP command or in exabgp.conf
_ADDRESS_CHARACTERS = re.compile(r"[0-9A-Fa-f:./]+")


def _ip(value: str) -> str:
    if not _ADDRESS_CHARACTERS.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an IP address (only digits, a-f, ':' and '.'; no scope id)"
        )
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def _is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


IpAddress = Annotated[str, AfterValidator(_ip)]


class BfdConfig(_Strict):
    interval: Duration = Field(
        default=0.1,
        ge=0.01,
        le=60.0,
        description="BFD transmit and receive interval (10ms-60s); the session uses the slower "
        "of ours and the router's",
    )
    multiplier: int = Field(
        default=3, ge=2, le=255, description="missed packets before the session is down"
    )
    gate: bool = Field(
        default=True,
        description="announce to this router only while the BFD session to it is up, so the "
        "router can always see this host die (off for routers with a strict mode of their own: "
        "FRR 10 `bfd strict`, IOS-XR `strict-mode`)",
    )

    @property
    def interval_ms(self) -> int:
        return round(self.interval * 1000)


# where a secret may be read from: a plain path, nothing that could break a line
_PATH = r"^/[^\x00-\x1f\x7f]*$"


class NeighborConfig(_Strict):
    address: IpAddress = Field(description="the router's address")
    peer_as: Asn = Field(description="the router's AS")
    local_address: IpAddress | None = Field(
        default=None,
        description="our address on this session (next-hop self); default: "
        "bgp.local_address, then router_id; must be of the neighbor's family",
    )
    port: int | None = Field(default=None, ge=1, le=65535, description="TCP port to connect to")
    hold_time: int = Field(
        default=9,
        ge=3,
        le=65535,
        description="BGP hold time in seconds, 3-65535 (0, no keepalives, would let a dead "
        "host's routes live for ever, so it is refused)",
    )
    description: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9 ._-]{0,64}$", description="free text for ExaBGP"
    )
    bfd: BfdConfig | None = Field(
        default=None,
        description="run a BFD session to this router with FRR's bfdd beside ExaBGP "
        "(`announcer bfd-config` renders its configuration); absent: no BFD",
    )
    password_file: str | None = Field(
        default=None,
        pattern=_PATH,
        description="absolute path of a file holding the session's TCP MD5 secret (never the "
        "secret itself here); rendered into exabgp.conf as md5-password",
    )

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.address


class BgpConfig(_Strict):
    local_as: Asn = Field(description="this host's AS")
    router_id: Annotated[str, AfterValidator(_ip)] = Field(description="an IPv4 address")
    local_address: IpAddress | None = Field(
        default=None, description="source address of the sessions; default: router_id"
    )
    neighbors: list[NeighborConfig] = Field(min_length=1, description="the upstream routers")

    @field_validator("router_id")
    @classmethod
    def _router_id_is_v4(cls, value: str) -> str:
        if ":" in value:
            raise ValueError(f"{value!r}: the router id is an IPv4 address")
        return value


class CheckConfig(_Strict):
    http: HttpProbeConfig | None = Field(default=None, description="an HTTP(S) GET probe")
    tcp: TcpProbeConfig | None = Field(default=None, description="a TCP connect probe")
    exec: ExecProbeConfig | None = Field(default=None, description="run a program, exit 0 = ok")
    haproxy: HaproxyProbeConfig | None = Field(
        default=None, description="HAProxy runtime API (show stat)"
    )
    nginx: NginxProbeConfig | None = Field(default=None, description="nginx stub_status page")
    interval: Duration = Field(default=1.0, gt=0, description="time between probes when settled")
    fast_interval: Duration = Field(
        default=0.05,
        gt=0,
        description="time between probes while a change is being confirmed: rises, and "
        "failures that could be a slow moment (a timeout, a reset)",
    )
    confirm_interval: Duration = Field(
        default=0.02,
        gt=0,
        description="time between probes confirming a failure the service stated (refused, "
        "a bad status, a closed frontend); a refusal after the watched connection ended is "
        "certain and confirms at once",
    )
    timeout: Duration = Field(default=0.5, gt=0, description="a probe that takes longer fails")
    rise: int = Field(default=3, ge=1, le=100, description="successes needed to become up")
    fall: int = Field(default=3, ge=1, le=100, description="failures needed to become down")
    watch: bool = Field(
        default=True,
        description="hold an idle connection to the checked service and probe at once when it "
        "closes (a stopped server is noticed in milliseconds); not for exec checks",
    )
    ttl: Duration | None = Field(
        default=None,
        description="a verdict older than this counts as down: an up that is not confirmed "
        "again, or an unknown that never settles; default 3 x interval + timeout",
    )

    @model_validator(mode="after")
    def _exactly_one_probe_and_sane_timing(self) -> CheckConfig:
        given = [
            name for name in ("http", "tcp", "exec", "haproxy", "nginx") if getattr(self, name)
        ]
        if len(given) != 1:
            raise ValueError(
                "a check needs exactly one of http, tcp, exec, haproxy, nginx"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.timeout >= self.interval:
            raise ValueError(f"timeout ({self.timeout:g}s) must be shorter than interval")
        if self.fast_interval > self.interval:
            raise ValueError("fast_interval must not be longer than interval")
        if self.confirm_interval > self.fast_interval:
            raise ValueError("confirm_interval must not be longer than fast_interval")
        if self.ttl is not None and self.ttl <= self.interval + self.timeout:
            raise ValueError("ttl must be longer than interval + timeout")
        return self

    @property
    def probe(self) -> ProbeConfig:
        probe = self.http or self.tcp or self.exec or self.haproxy or self.nginx
        assert probe is not None
        return probe

    @property
    def ttl_s(self) -> float:
        return self.ttl if self.ttl is not None else 3 * self.interval + self.timeout


class WeightConfig(_Strict):
    bandwidth_mbps: float = Field(
        gt=0, le=10_000_000, description="link bandwidth to advertise at full capacity (Mbit/s)"
    )
    from_check: str | None = Field(
        default=None,
        description="scale by this check's live capacity (HAProxy: UP servers / servers)",
    )
    steps: int = Field(default=10, ge=1, le=100, description="capacity levels (10: 10% steps)")
    asn: int | None = Field(
        default=None, ge=1, le=65535, description="ASN in the community; default: bgp.local_as"
    )


AddressMode = Literal["require", "manage", "ignore"]


class AddressesConfig(_Strict):
    mode: AddressMode = Field(
        default="require",
        description="for every VIP without its own `address:`. require: announce only while "
        "the VIP is assigned to a local interface; manage: the plugin assigns it to `interface` "
        "and removes it once withdrawn (needs CAP_NET_ADMIN); ignore: do not look",
    )
    interface: str = Field(
        default="lo",
        pattern=r"^[A-Za-z0-9_.:@-]{1,15}$",
        description="where `manage` assigns the VIPs",
    )
    linger: Duration = Field(
        default=2.0,
        le=60.0,
        description="manage: how long a removed VIP's address stays after its withdraw was "
        "acknowledged (packets already on their way still find it)",
    )


_THRESHOLD = re.compile(r"([0-9]+(?:\.[0-9]+)?)%")


def _threshold(value: object) -> int | str:
    """N hosts (an integer >= 1) or P% of the hosts the routers show ("50%", 1-100)."""
    if isinstance(value, bool):
        raise ValueError('a number of hosts (1, 2...) or a percentage ("50%")')
    if isinstance(value, int):
        if value < 1:
            raise ValueError("a number of hosts must be at least 1")
        return value
    if isinstance(value, str):
        match = _THRESHOLD.fullmatch(value.strip())
        if match and 0 < float(match.group(1)) <= 100:
            return value.strip()
    raise ValueError(
        f"{_excerpt(value)} is not a number of hosts (1, 2...) or a percentage (1-100%)"
    )


HostThreshold = Annotated[int | str, BeforeValidator(_threshold)]


class VipFleetConfig(_Strict):
    min_serving: HostThreshold | None = Field(
        default=None,
        description="panic below this: soft check failures keep the VIP announced while fewer "
        "other hosts serve it normally (a count, or a percentage of the hosts announcing it)",
    )
    drain_min_serving: HostThreshold | None = Field(
        default=None,
        description="drain budget: a drain that would leave fewer other hosts serving the VIP "
        "normally is refused (409) unless forced",
    )


class FleetConfig(VipFleetConfig):
    community_asn: Asn = Field(
        default=65534,
        description="the global administrator of the large community each host tags its "
        "paths with (ASN:host:mark); the same on every host of a fleet",
    )
    settle: Duration = Field(
        default=0.3,
        gt=0,
        le=10,
        description="how long a host shows a soft failure or a drain request before it acts, "
        "so hosts acting at the same instant see each other (longer than the routers take to "
        "pass an update on)",
    )
    panic_exit: Duration = Field(
        default=3.0,
        ge=0,
        description="enough other hosts serve normally this long before a panic ends",
    )
    view_after: Duration = Field(
        default=3.0,
        gt=0,
        description="a router's paths are taken as complete this long after its session came "
        "up (or at its End-of-RIB)",
    )


class VipConfig(_Strict):
    prefix: str = Field(description="a /32 or /128 (a subnet only with allow_subnet)")
    checks: list[str] = Field(min_length=1, description="names of checks under `checks:`")
    require: Literal["all", "any"] | Annotated[int, Field(ge=1)] = Field(
        default="all", description="all, any, or the number of checks that must be up"
    )
    next_hop: str = Field(default="self", description="self, or an address of the VIP's family")
    med: int = Field(
        default=100, ge=0, le=MAX_ASN, description="always sent: routers take a missing MED as 0"
    )
    as_path_prepend: int = Field(
        default=0, ge=0, le=10, description="extra copies of local_as (2 makes a standby host)"
    )
    origin: Literal["igp", "egp", "incomplete"] = "igp"
    communities: list[Community] = Field(
        default_factory=list, description="ASN:VALUE (16-bit each) or no-export, no-advertise..."
    )
    large_communities: list[LargeCommunity] = Field(
        default_factory=list, description="A:B:C (32-bit each)"
    )
    extended_communities: list[ExtendedCommunity] = Field(
        default_factory=list, description="target:ASN:N, origin:ASN:N, target:IP:N"
    )
    allow_subnet: bool = Field(
        default=False, description="allow a prefix shorter than a host route"
    )
    address: AddressMode | None = Field(
        default=None, description="the address guard for this VIP; default: addresses.mode"
    )
    fleet: VipFleetConfig | None = Field(
        default=None,
        description="this VIP's panic threshold and drain budget (default: the fleet: section's)",
    )
    weight: WeightConfig | None = Field(
        default=None,
        description="send link bandwidth for weighted ECMP (every host of a VIP must, or none)",
    )

    @field_validator("next_hop")
    @classmethod
    def _next_hop(cls, value: str) -> str:
        return value if value == "self" else _ip(value)

    @model_validator(mode="after")
    def _prefix_is_a_vip(self) -> VipConfig:
        if not _ADDRESS_CHARACTERS.fullmatch(self.prefix):
            raise ValueError(
                f"prefix: {self.prefix!r} is not a valid prefix "
                "(only digits, a-f, ':', '.' and '/'; no scope id)"
            )
        try:
            network = ipaddress.ip_network(self.prefix, strict=True)
        except ValueError as exc:
            raise ValueError(f"prefix: {self.prefix} is not a valid prefix ({exc})") from None
        if network.prefixlen == 0:
            raise ValueError(f"prefix: {self.prefix} is a default route; that is never announced")
        if not self.allow_subnet and network.prefixlen != network.max_prefixlen:
            raise ValueError(
                f"prefix: {self.prefix} is not a host route (/{network.max_prefixlen}); "
                "set allow_subnet: true to announce a subnet"
            )
        object.__setattr__(self, "prefix", str(network))
        if self.next_hop != "self" and (":" in self.next_hop) != (network.version == 6):
            raise ValueError(
                f"next_hop: {self.next_hop} is not of the same family as {self.prefix}"
            )
        return self

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.prefix

    def required_count(self) -> int:
        if self.require == "all":
            return len(self.checks)
        if self.require == "any":
            return 1
        return self.require


class DrainConfig(_Strict):
    file: str | None = Field(
        default=None, description="while this file exists, every VIP is drained"
    )
    gshut_period: Duration = Field(
        default=10.0,
        description="announce with GRACEFUL_SHUTDOWN (65535:0) this long before withdrawing; "
        "0 withdraws at once",
    )
    connections_below: int | None = Field(
        default=None,
        ge=0,
        description="after gshut_period, also wait until the LB has fewer active connections",
    )
    connections_check: str | None = Field(
        default=None, description="haproxy or nginx check that reports active connections"
    )
    max_wait: Duration = Field(default=60.0, description="the longest a drain waits to withdraw")
    on_stop: bool = Field(
        default=False, description="on SIGTERM, drain (gshut_period, then withdraw) before exit"
    )
    state_file: str | None = Field(
        default=None, description="drains are kept here and survive a plugin restart"
    )

    @model_validator(mode="after")
    def _connections(self) -> DrainConfig:
        if (self.connections_below is None) != (self.connections_check is None):
            raise ValueError("connections_below and connections_check go together")
        return self


class DampeningConfig(_Strict):
    enabled: bool = True
    penalty: float = Field(default=1000, gt=0, description="added for each health withdrawal")
    half_life: Duration = Field(default=15.0, gt=0, description="the penalty halves this often")
    suppress: float = Field(
        default=2500, gt=0, description="held withdrawn above this (3 quick withdrawals)"
    )
    reuse: float = Field(default=750, gt=0, description="released below this")
    max_suppress: Duration = Field(default=120.0, gt=0, description="longest suppression")
    min_announce_interval: Duration = Field(
        default=0.0,
        description="after a withdraw, do not announce again sooner (withdraws are never held)",
    )

    @model_validator(mode="after")
    def _thresholds(self) -> DampeningConfig:
        if self.reuse >= self.suppress:
            raise ValueError("reuse must be below suppress")
        ceiling = self.reuse * 2 ** (self.max_suppress / self.half_life)
        if self.enabled and ceiling < self.suppress:
            raise ValueError(
                f"with half_life {self.half_life:g}s the penalty is capped at {ceiling:.0f} to "
                f"honour max_suppress, below suppress ({self.suppress:g}): nothing could ever be "
                "suppressed; raise max_suppress or lower suppress"
            )
        return self


class ApiConfig(_Strict):
    listen: str = Field(default="127.0.0.1:9180", description="host:port; empty string disables")
    token_file: str | None = Field(
        default=None,
        description="bearer token for POST endpoints; required when listen is not loopback",
    )

    @model_validator(mode="after")
    def _token_off_loopback(self) -> ApiConfig:
        if self.listen and not _is_loopback(self.host) and self.token_file is None:
            raise ValueError(
                f"listen: {self.listen} is reachable from other hosts: set api.token_file, "
                "or listen on 127.0.0.1 or [::1]"
            )
        return self

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if value == "":
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not host:port")
        _ip(host.strip("[]"))
        return value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class BfddConfig(_Strict):
    vty_socket: str = Field(
        default="/var/run/frr",
        pattern=_PATH,
        description="folder of bfdd's vty socket (what bfdd's --vty_socket names), to read "
        "the BFD session state from",
    )
    vtysh: str = Field(
        default="/usr/bin/vtysh",
        pattern=_PATH,
        description="no longer used (the plugin now reads bfdd's vty socket itself); still "
        "accepted, so that configs that name it load",
    )
    control_socket: str | None = Field(
        default="/run/announcer-bfdd/bfdd.sock",
        pattern=_PATH,
        description="bfdd's control socket (what bfdd's --bfdctl names): bfdd tells the plugin "
        "of every BFD state change there at once; null to read the vty socket only",
    )
    poll_interval: Duration = Field(
        default=5.0,
        ge=0.5,
        le=60.0,
        description="how often the BFD state is read from the vty socket while the control "
        "socket cannot be used (a tenth of a millisecond of CPU each)",
    )


class SlotConfig(_Strict):
    address: IpAddress = Field(
        description="the slot: a next-hop address on the routers' shared segment, unused by "
        "any host; the routers' ECMP set is the slots, whichever host answers for them"
    )
    vrid: int = Field(
        ge=1,
        le=255,
        description="its VRRP virtual router id, the same on every host that backs it; also "
        "the ADD-PATH path id of the VIP's path through it",
    )
    priority: int = Field(
        ge=1,
        le=254,
        description="this host's VRRP priority for it: the highest healthy backer holds it",
    )


class StableNextHopsConfig(_Strict):
    interface: str = Field(
        pattern=r"^[A-Za-z0-9_.:@-]{1,15}$",
        description="the interface on the routers' segment, where keepalived puts the slots",
    )
    slots: list[SlotConfig] = Field(
        min_length=1,
        max_length=64,
        description="the slots this host backs (give each slot two backers or more)",
    )
    advert_interval: Duration = Field(
        default=0.1,
        ge=0.01,
        le=40.0,
        description="VRRPv3 advertisement interval: a dead holder's slot moves after about "
        "three of them",
    )
    preempt: bool = Field(
        default=False,
        description="false: a slot stays with whoever holds it when a higher-priority backer "
        "returns (no connection of it breaks); true: it moves back (the connections opened "
        "on it since it moved break)",
    )
    health_file: str = Field(
        default="/run/announcer/slots",
        pattern=_PATH,
        description="the plugin writes 0 here while this host may hold slots (every VIP with "
        "stable next hops serving, a BGP session up), 1 otherwise; keepalived tracks it",
    )
    keepalived_pid_file: str | None = Field(
        default=None,
        pattern=_PATH,
        description="keepalived's pid file: while keepalived is not running the plugin "
        "withdraws the VIPs announced through the slots (reason keepalived_down) and removes "
        "the slots' addresses from `interface` (a killed keepalived leaves them behind)",
    )


class ExabgpConfig(_Strict):
    ack: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="auto: send enable-ack at start and wait for acks; on: expect acks; "
        "off: a command counts as done once written",
    )
    ack_timeout: Duration = Field(default=5.0, gt=0)


class Config(_Strict):
    bgp: BgpConfig | None = Field(
        default=None, description="sessions, for exabgp-config and next-hop sanity checks"
    )
    checks: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")], CheckConfig] = Field(
        max_length=MAX_ENTRIES, description="named health checks"
    )
    vips: list[VipConfig] = Field(
        min_length=1, max_length=MAX_ENTRIES, description="the routes to announce"
    )
    drain: DrainConfig = Field(default_factory=DrainConfig)
    dampening: DampeningConfig = Field(default_factory=DampeningConfig)
    addresses: AddressesConfig = Field(
        default_factory=AddressesConfig,
        description="the VIP address guard: is the VIP on this host at all?",
    )
    api: ApiConfig = Field(default_factory=ApiConfig)
    fleet: FleetConfig | None = Field(
        default=None,
        description="the fleet view from the routers (ADD-PATH), panic threshold and drain "
        "budget; off without it",
    )
    stable_next_hops: StableNextHopsConfig | None = Field(
        default=None,
        description="announce the IPv4 VIPs through slots that keepalived moves between hosts "
        "(ADD-PATH, one path per slot), so the routers' ECMP set stays the same while hosts "
        "fail, drain and return; off without it",
    )
    exabgp: ExabgpConfig = Field(default_factory=ExabgpConfig)
    bfdd: BfddConfig = Field(
        default_factory=BfddConfig,
        description="where the plugin reads BFD session state (only when a neighbor has bfd:)",
    )

    def vip(self, prefix: str) -> VipConfig | None:
        return next((v for v in self.vips if v.prefix == prefix), None)

    def address_mode(self, vip: VipConfig) -> AddressMode:
        return vip.address or self.addresses.mode

    def stable_slots(self, vip: VipConfig) -> list[SlotConfig]:
        """The slots a VIP is announced through (none: a plain next hop)."""
        stable = self.stable_next_hops
        if stable is None or vip.is_ipv6:
            return []
        return stable.slots

    def managed_vips(self) -> list[VipConfig]:
        """The VIPs whose address the plugin assigns and removes itself."""
        return [vip for vip in self.vips if self.address_mode(vip) == "manage"]


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(AnnouncerError):
    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: " + "; ".join(map(str, issues)))

    @property
    def problems(self) -> list[str]:
        return [str(issue) for issue in self.issues]


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_EXCERPT = reprlib.Repr()
_EXCERPT.maxlevel, _EXCERPT.maxstring, _EXCERPT.maxother = 2, 60, 60
_EXCERPT.maxlist = _EXCERPT.maxdict = _EXCERPT.maxtuple = _EXCERPT.maxset = 4


def _excerpt(value: object) -> str:
    """A bounded repr: an error message quotes what it got, never a whole expanded value."""
    return _EXCERPT.repr(value)[:120]


def _issues_from(error: ValidationError) -> list[ConfigIssue]:
    issues = []
    for item in error.errors(include_url=False):
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        elif item["type"] == "missing":
            message = "required key is missing"
        elif "input" in item and item["type"] not in ("value_error", "assertion_error"):
            message = f"{message} (got {_excerpt(item['input'])})"
        # a model-level error on a VIP that names its own field ("prefix: ...") is moved there
        field, sep, rest = message.partition(": ")
        on_vip = field in ("prefix", "next_hop") and bool(loc) and isinstance(loc[-1], int)
        on_api = field == "listen" and loc == ("api",)
        if sep and (on_vip or on_api):
            loc, message = (*loc, field), rest
        issues.append(ConfigIssue(_path(loc), message))
    return issues


def cross_check(config: Config) -> Iterator[ConfigIssue]:
    """Rules that span sections."""
    seen: dict[str, int] = {}
    has_v6_session = config.bgp is not None and any(n.is_ipv6 for n in config.bgp.neighbors)
    for index, vip in enumerate(config.vips):
        where = f"vips[{index}]"
        if vip.prefix in seen:
            yield ConfigIssue(f"{where}.prefix", f"{vip.prefix} is also vips[{seen[vip.prefix]}]")
        seen.setdefault(vip.prefix, index)
        for position, name in enumerate(vip.checks):
            if name not in config.checks:
                yield ConfigIssue(f"{where}.checks[{position}]", f"no check named {name!r}")
        if len(set(vip.checks)) != len(vip.checks):
            yield ConfigIssue(f"{where}.checks", "a check is listed twice")
        if isinstance(vip.require, int) and vip.require > len(vip.checks):
            yield ConfigIssue(
                f"{where}.require",
                f"{vip.require} checks required but only {len(vip.checks)} listed",
            )
        if vip.is_ipv6 and vip.next_hop == "self" and config.bgp is not None and not has_v6_session:
            yield ConfigIssue(
                f"{where}.next_hop",
                f"{vip.prefix} with next_hop self needs an IPv6 neighbor "
                "(ExaBGP cannot use an IPv4 session's address); give an explicit IPv6 next hop",
            )
        if vip.weight is not None:
            if vip.weight.from_check is not None and vip.weight.from_check not in vip.checks:
                yield ConfigIssue(
                    f"{where}.weight.from_check",
                    f"{vip.weight.from_check!r} is not one of this VIP's checks",
                )
            asn = vip.weight.asn or (config.bgp.local_as if config.bgp else None)
            if asn is None or asn > 65535:
                yield ConfigIssue(
                    f"{where}.weight.asn",
                    "link bandwidth carries a 16-bit ASN: set weight.asn (bgp.local_as is "
                    + ("missing)" if asn is None else f"{asn})"),
                )
        if config.address_mode(vip) == "manage" and "/" in vip.prefix:
            bits = vip.prefix.rsplit("/", 1)[1]
            if int(bits) not in (32, 128):
                yield ConfigIssue(
                    f"{where}.address",
                    f"manage assigns host addresses only; {vip.prefix} is a subnet "
                    "(use require, and assign an address inside it yourself)",
                )
        if vip.as_path_prepend and config.bgp is None:
            yield ConfigIssue(f"{where}.as_path_prepend", "needs the bgp: section (its local_as)")
        if vip.fleet is not None and config.fleet is None:
            yield ConfigIssue(f"{where}.fleet", "needs the top-level fleet: section")
    yield from _check_stable_next_hops(config)
    if config.fleet is not None and config.bgp is None:
        yield ConfigIssue("fleet", "needs the bgp: section (its router_id names this host)")
    drain_check = config.drain.connections_check
    if drain_check is not None:
        check = config.checks.get(drain_check)
        if check is None:
            yield ConfigIssue("drain.connections_check", f"no check named {drain_check!r}")
        elif check.haproxy is None and check.nginx is None:
            yield ConfigIssue(
                "drain.connections_check",
                "must be a haproxy or nginx check (they count connections)",
            )
    if config.bgp is not None:
        for index, neighbor in enumerate(config.bgp.neighbors):
            local = neighbor.local_address or config.bgp.local_address or config.bgp.router_id
            if (":" in local) != neighbor.is_ipv6:
                yield ConfigIssue(
                    f"bgp.neighbors[{index}].local_address",
                    f"{neighbor.address} needs a local address of its own family (have {local})",
                )
        addresses = [n.address for n in config.bgp.neighbors]
        for index, address in enumerate(addresses):
            if addresses.index(address) != index:
                yield ConfigIssue(f"bgp.neighbors[{index}].address", f"{address} is listed twice")


def _check_stable_next_hops(config: Config) -> Iterator[ConfigIssue]:
    stable = config.stable_next_hops
    if stable is None:
        return
    if config.bgp is None:
        yield ConfigIssue("stable_next_hops", "needs the bgp: section")
    if stable.interface == "lo":
        yield ConfigIssue(
            "stable_next_hops.interface",
            "keepalived cannot run VRRP on the loopback: the interface on the routers' segment",
        )
    seen_vrid: dict[int, int] = {}
    seen_address: dict[str, int] = {}
    for index, slot in enumerate(stable.slots):
        where = f"stable_next_hops.slots[{index}]"
        if ":" in slot.address:
            yield ConfigIssue(
                f"{where}.address",
                f"IPv4 slots only (IPv6 VIPs keep their plain next hop); {slot.address} is IPv6",
            )
        if slot.vrid in seen_vrid:
            yield ConfigIssue(f"{where}.vrid", f"{slot.vrid} is also slots[{seen_vrid[slot.vrid]}]")
        if slot.address in seen_address:
            yield ConfigIssue(
                f"{where}.address", f"{slot.address} is also slots[{seen_address[slot.address]}]"
            )
        seen_vrid.setdefault(slot.vrid, index)
        seen_address.setdefault(slot.address, index)
    for index, vip in enumerate(config.vips):
        if config.stable_slots(vip) and vip.next_hop != "self":
            yield ConfigIssue(
                f"vips[{index}].next_hop",
                "with stable_next_hops the IPv4 VIPs' next hops are the slots; "
                f"remove next_hop {vip.next_hop}",
            )


def parse_config(data: Any, source: str = "<config>") -> Config:
    if not isinstance(data, dict):
        raise ConfigError(source, [ConfigIssue("", "the file must hold a mapping (key: value)")])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        issues = _issues_from(exc)
        if len(issues) > MAX_ISSUES:
            more = len(issues) - MAX_ISSUES
            issues = [*issues[:MAX_ISSUES], ConfigIssue("", f"... and {more} more problems")]
        raise ConfigError(source, issues) from None
    issues = list(cross_check(config))
    if issues:
        raise ConfigError(source, issues)
    return config


# Far above any real configuration (10,000 VIPs with their checks are about 2 MB and 300,000
# nodes), far below what would hold the plugin: a reload must never freeze it.
MAX_CONFIG_BYTES = 8 * 1024 * 1024
MAX_CONFIG_NODES = 1_000_000


_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _BoundedLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """PyYAML's safe loader (libyaml's parser where present), refusing a document whose
    aliases expand to more than MAX_CONFIG_NODES nodes ("billion laughs": an 870-byte file
    of nested aliases is a billion values once validated or printed) or refer to themselves."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expanded_size(node)
        return self.construct_document(node)


class _YamlRefused(Exception):
    pass


def _check_expanded_size(root: yaml.Node) -> None:
    """Count the nodes the document holds once every alias is expanded, without expanding:
    each node's size is computed once (aliases share node objects)."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            children = _children(node)
            total = 1 + sum(sizes[id(child)] for child in children)
            if total > MAX_CONFIG_NODES:
                raise _YamlRefused(
                    f"the document expands to more than {MAX_CONFIG_NODES:,} values "
                    "(aliases that multiply); write it out or use fewer nested aliases"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _YamlRefused("an alias refers to the node that holds it")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


class _CollectorPause:
    """The cyclic collector off while a configuration is read: parsing and validating builds
    hundreds of thousands of objects, none of them in a cycle (refcounting frees the garbage),
    and the collections their allocations set off walked every live object again and again (a
    10,000-VIP file: 2.0 s with the collector, 0.8 s without). Counted: loads in several
    threads turn it back on only when the last one ends, and only if it was on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._was_enabled = False

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._was_enabled:
                gc.enable()


_collection_paused = _CollectorPause()


def load_config(path: str | Path) -> Config:
    """Read, parse and validate a configuration file. Bounded in size and in what its aliases
    expand to; the plugin calls it off its event loop."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot read: {exc.strerror}")]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(
            source, [ConfigIssue("", f"larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB")]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", f"not UTF-8 (byte {exc.start})")]) from None
    try:
        # aliases multiply only what an anchor names, and an anchor is written with "&": a
        # document without one holds no more values than its size allows, and skips the walk
        # (a fifth of the load of a thousand VIPs)
        loader = _BoundedLoader if "&" in text else _SafeLoader
        with _collection_paused:
            data = yaml.load(text, Loader=loader)
    except _YamlRefused as exc:
        raise ConfigError(source, [ConfigIssue("YAML", str(exc))]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "YAML"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [ConfigIssue(where, f"invalid YAML: {problem}")]) from None
    with _collection_paused:
        return parse_config(data, source)
