"""The lab's hosts and addresses (documentation ranges only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "CLIENT",
    "CLIENT2",
    "CLIENT_V4",
    "CLIENT_V6",
    "LAN_V4_PREFIXLEN",
    "ROUTER",
    "ROUTERS",
    "ROUTER_AS",
    "ROUTER_CLIENT_V4",
    "ROUTER_CLIENT_V6",
    "ROUTER_V4",
    "ROUTER_V6",
    "SWITCH",
    "VIP_V4",
    "VIP_V6",
    "LbHost",
    "Router",
    "host_named",
    "lb_hosts",
    "slot_address",
    "slots_backed",
]

ROUTER = "r1"  # the first router; helpers that read one router read this one by default
SWITCH = "sw"  # a bridge between the routers and the hosts: a dead host's link is on it
CLIENT = "client"  # reaches the VIPs through r1
CLIENT2 = "client2"  # through r2
ROUTER_AS = 65000
ROUTER_V4 = "198.51.100.1"
ROUTER_V6 = "2001:db8:ffff::1"
LAN_V4_PREFIXLEN = 26
LAN_V6_PREFIXLEN = 64
CLIENT_PREFIXLEN_V4 = 28
ROUTER_CLIENT_V4 = "203.0.113.1"
CLIENT_V4 = "203.0.113.2"
ROUTER_CLIENT_V6 = "2001:db8:cccc::1"
CLIENT_V6 = "2001:db8:cccc::2"
# the lab's BGP sessions are protected by this TCP MD5 secret (a lab, not a secret)
LAB_BGP_SECRET = "announcer-lab-md5"
DEFAULT_WORKDIR = Path("/tmp/announcer-lab")  # the lab's files, logs and sockets
VIP_V4 = "192.0.2.10/32"
VIP_V6 = "2001:db8:100::10/128"


@dataclass(frozen=True, slots=True)
class Router:
    """One upstream router (a ToR of the pair) and the client network behind it."""

    name: str
    v4: str
    v6: str
    client: str  # the client namespace behind this router
    client_net_v4: str
    client_gw_v4: str
    client_v4: str
    client_net_v6: str
    client_gw_v6: str
    client_v6: str


ROUTERS = (
    Router(
        "r1",
        ROUTER_V4,
        ROUTER_V6,
        CLIENT,
        "203.0.113.0/28",
        ROUTER_CLIENT_V4,
        CLIENT_V4,
        "2001:db8:cccc::/64",
        ROUTER_CLIENT_V6,
        CLIENT_V6,
    ),
    Router(
        "r2",
        "198.51.100.2",
        "2001:db8:ffff::2",
        CLIENT2,
        "203.0.113.16/28",
        "203.0.113.17",
        "203.0.113.18",
        "2001:db8:dddd::/64",
        "2001:db8:dddd::1",
        "2001:db8:dddd::2",
    ),
)


@dataclass(frozen=True, slots=True)
class LbHost:
    index: int
    kind: Literal["nginx", "haproxy"]

    @property
    def name(self) -> str:
        return f"lb{self.index}"

    @property
    def asn(self) -> int:
        return 65010 + self.index

    @property
    def v4(self) -> str:
        return f"198.51.100.{10 + self.index}"

    @property
    def v6(self) -> str:
        return f"2001:db8:ffff::{10 + self.index}"


def lb_hosts(count: int, haproxy_hosts: int = 1) -> list[LbHost]:
    """`count` hosts; the last `haproxy_hosts` of them run HAProxy, the others nginx."""
    if not 1 <= count <= 40:
        raise ValueError("the lab has 1 to 40 LB hosts")
    if not 0 <= haproxy_hosts <= count:
        raise ValueError("haproxy_hosts must be between 0 and the number of hosts")
    return [
        LbHost(i, "haproxy" if i > count - haproxy_hosts else "nginx") for i in range(1, count + 1)
    ]


def host_named(hosts: list[LbHost], name: str) -> LbHost:
    """The host called `name` (StopIteration for a name the lab does not have)."""
    return next(h for h in hosts if h.name == name)


# stable next hops: slot N (1..hosts) is 198.51.100.(40+N), backed first by lbN and second by
# the next host, so every host backs two slots and every slot has two backers
SLOT_PRIMARY, SLOT_BACKUP = 200, 100


def slot_address(number: int) -> str:
    return f"198.51.100.{40 + number}"


def slots_backed(host: LbHost, count: int) -> list[tuple[int, int]]:
    """The slots a host backs, as (slot number, its VRRP priority for it)."""
    backup_of = (host.index - 2) % count + 1  # the previous host's slot
    if backup_of == host.index:
        return [(host.index, SLOT_PRIMARY)]
    return [(host.index, SLOT_PRIMARY), (backup_of, SLOT_BACKUP)]
