"""The lab's hosts and addresses (documentation ranges only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CLIENT",
    "CLIENT_V4",
    "CLIENT_V6",
    "LAN_V4_PREFIXLEN",
    "ROUTER",
    "ROUTER_AS",
    "ROUTER_CLIENT_V4",
    "ROUTER_CLIENT_V6",
    "ROUTER_V4",
    "ROUTER_V6",
    "VIP_V4",
    "VIP_V6",
    "LbHost",
    "lb_hosts",
]

ROUTER = "r1"
CLIENT = "client"
ROUTER_AS = 65000
ROUTER_V4 = "198.51.100.1"
ROUTER_V6 = "2001:db8:ffff::1"
LAN_V4_PREFIXLEN = 26
LAN_V6_PREFIXLEN = 64
ROUTER_CLIENT_V4 = "203.0.113.1"
CLIENT_V4 = "203.0.113.2"
ROUTER_CLIENT_V6 = "2001:db8:cccc::1"
CLIENT_V6 = "2001:db8:cccc::2"
VIP_V4 = "192.0.2.10/32"
VIP_V6 = "2001:db8:100::10/128"


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
