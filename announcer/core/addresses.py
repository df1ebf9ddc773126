"""The VIP address guard: announce a VIP only while this host can answer on it.

A host whose VIP is not assigned to any of its interfaces passes every health check on
127.0.0.1, yet the packets the routers send it for the VIP are refused: a black hole. With
`require` (the default) and `manage`, a VIP is withdrawn while its address is missing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Set
from enum import StrEnum

__all__ = ["AddressGuard", "address_present", "host_address"]


class AddressGuard(StrEnum):
    REQUIRE = "require"  # announce only while the address is on a local interface
    MANAGE = "manage"  # the plugin adds it (before the first announce) and removes it
    IGNORE = "ignore"  # announce whatever the interfaces hold


def host_address(prefix: str) -> str | None:
    """The address of a host route (/32, /128), in the form the kernel reports; else None."""
    network = ipaddress.ip_network(prefix)
    if network.prefixlen != network.max_prefixlen:
        return None
    return str(network.network_address)


def address_present(
    prefix: str, addresses: Set[str] | None, host: str | object | None = ...
) -> bool:
    """Whether the host holds the VIP: its address (host route), or any address inside it (a
    subnet announced with allow_subnet). Unknown (no netlink dump yet) counts as missing.
    `host` is the prefix's `host_address`, when the caller has it already."""
    if addresses is None:
        return False
    address = host_address(prefix) if host is ... else host
    if address is not None:
        return address in addresses
    network = ipaddress.ip_network(prefix)
    return any(
        ipaddress.ip_address(a) in network
        for a in addresses
        if (":" in a) == (network.version == 6)
    )
