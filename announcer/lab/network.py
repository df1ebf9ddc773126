"""The lab's wiring: namespaces, a bridge as the switch, a cable per router and host, the
clients behind the routers; and what breaks it (a frozen host, a cut cable)."""

from __future__ import annotations

import contextlib
import os
import signal

from .netns import ip, namespace_pids
from .prometheus import PROMETHEUS, PROMETHEUS_V4, ROOT_PORT, ROOT_PORT_V4
from .topology import (
    CLIENT_PREFIXLEN_V4,
    LAN_V4_PREFIXLEN,
    ROUTERS,
    SWITCH,
    VIP_V4,
    VIP_V6,
    LbHost,
    Router,
)
from .workspace import sysctl, wait_until

__all__ = ["Network"]


class Network:
    def __init__(self, hosts: list[LbHost], unassigned: frozenset[str], prometheus: bool) -> None:
        self._hosts = hosts
        self._unassigned = unassigned  # hosts whose VIPs are not put on lo
        self._prometheus = prometheus

    def build(self, namespaces: list[str]) -> None:
        for namespace in namespaces:
            ip("netns", "add", namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
            sysctl(namespace, "net.ipv6.conf.all.accept_dad", "0")
            sysctl(namespace, "net.ipv6.conf.default.accept_dad", "0")
        ip("-n", SWITCH, "link", "add", "br0", "type", "bridge")
        ip("-n", SWITCH, "link", "set", "br0", "up")
        for router in ROUTERS:
            for key in (
                "net.ipv4.ip_forward",
                "net.ipv6.conf.all.forwarding",
                "net.ipv4.fib_multipath_hash_policy",
                "net.ipv6.fib_multipath_hash_policy",
            ):
                sysctl(router.name, key, "1")
            self._plug(router.name)
            ip("-n", router.name, "addr", "add", f"{router.v4}/{LAN_V4_PREFIXLEN}", "dev", "eth0")
            ip("-n", router.name, "addr", "add", f"{router.v6}/64", "dev", "eth0", "nodad")
            self._client_link(router)
        for host in self._hosts:
            self._plug(host.name)
            ip("-n", host.name, "addr", "add", f"{host.v4}/{LAN_V4_PREFIXLEN}", "dev", "eth0")
            ip("-n", host.name, "addr", "add", f"{host.v6}/64", "dev", "eth0", "nodad")
            if host.name not in self._unassigned:
                self.assign_vips(host.name)
            self.host_routes(host.name)
        if self._prometheus:
            self._plug(PROMETHEUS)
            address = f"{PROMETHEUS_V4}/{LAN_V4_PREFIXLEN}"
            ip("-n", PROMETHEUS, "addr", "add", address, "dev", "eth0")
            self._reach_from_here()

    def remove_root_port(self) -> None:
        if ROOT_PORT in ip("-o", "link", "show", check=False):
            ip("link", "delete", ROOT_PORT, check=False)

    def assign_vips(self, name: str, assigned: bool = True) -> None:
        """Put the VIPs on the host's lo (what an operator does for `address: require`), or
        take them off."""
        for vip in (VIP_V4, VIP_V6):
            ip("-n", name, "addr", "add" if assigned else "del", vip, "dev", "lo")

    def _reach_from_here(self) -> None:
        """A cable from this (the root) namespace to the switch, carrying only the route to
        the lab's Prometheus: its URL then opens from this machine. Deleting the switch
        namespace deletes the cable."""
        ip("link", "add", ROOT_PORT, "type", "veth", "peer", "name", "root", "netns", SWITCH)
        ip("-n", SWITCH, "link", "set", "root", "master", "br0", "up")
        ip("addr", "add", f"{ROOT_PORT_V4}/32", "dev", ROOT_PORT)
        ip("link", "set", ROOT_PORT, "up")
        ip("route", "add", f"{PROMETHEUS_V4}/32", "dev", ROOT_PORT, "src", ROOT_PORT_V4)

    def _plug(self, namespace: str) -> None:
        """A cable from `namespace`'s eth0 to a port of the switch named after it."""
        ip(
            *("link", "add", "eth0", "netns", namespace, "type", "veth"),
            *("peer", "name", namespace, "netns", SWITCH),
        )
        ip("-n", SWITCH, "link", "set", namespace, "master", "br0", "up")
        ip("-n", namespace, "link", "set", "eth0", "up")

    def host_routes(self, name: str) -> None:
        """A host answers each client network through the router it sits behind (replies
        follow the request's path), and everything else through r1. Setting the link down
        deletes these, so `reconnect` adds them again."""
        first = ROUTERS[0]
        ip("-n", name, "route", "replace", "default", "via", first.v4)
        ip("-n", name, "-6", "route", "replace", "default", "via", first.v6)
        for router in ROUTERS[1:]:
            ip("-n", name, "route", "replace", router.client_net_v4, "via", router.v4)
            ip("-n", name, "-6", "route", "replace", router.client_net_v6, "via", router.v6)

    def _client_link(self, router: Router) -> None:
        ip(
            *("link", "add", "eth0", "netns", router.client, "type", "veth"),
            *("peer", "name", router.client, "netns", router.name),
        )
        gw4 = f"{router.client_gw_v4}/{CLIENT_PREFIXLEN_V4}"
        ip("-n", router.name, "addr", "add", gw4, "dev", router.client)
        gw6 = f"{router.client_gw_v6}/64"
        ip("-n", router.name, "addr", "add", gw6, "dev", router.client, "nodad")
        ip("-n", router.name, "link", "set", router.client, "up")
        client4 = f"{router.client_v4}/{CLIENT_PREFIXLEN_V4}"
        ip("-n", router.client, "addr", "add", client4, "dev", "eth0")
        ip("-n", router.client, "addr", "add", f"{router.client_v6}/64", "dev", "eth0", "nodad")
        ip("-n", router.client, "link", "set", "eth0", "up")
        ip("-n", router.client, "route", "add", "default", "via", router.client_gw_v4)
        ip("-n", router.client, "-6", "route", "add", "default", "via", router.client_gw_v6)

    def freeze_host(self, name: str, frozen: bool) -> None:
        """SIGSTOP (or SIGCONT) every process of a host: nginx, ExaBGP, the plugin, bfdd."""
        for pid in namespace_pids(name):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def kill_host(self, name: str, dead: bool) -> None:
        """A host dies (every process frozen, its cable cut on the switch side, so the
        routers' own ports stay up), or comes back."""
        if dead:
            self.freeze_host(name, True)
            self.cut_link(name, True)
        else:
            self.cut_link(name, False)
            self.freeze_host(name, False)

    def cut_link(self, name: str, cut: bool) -> None:
        """The host's cable, on the switch side: the router's own port stays up."""
        ip("-n", SWITCH, "link", "set", name, "down" if cut else "up")
        if not cut:
            wait_until(
                lambda: "LOWER_UP" in ip("-n", name, "link", "show", "eth0"), 10, "link not up"
            )
            self.host_routes(name)
