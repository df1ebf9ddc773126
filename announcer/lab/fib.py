"""What the routers forward: their kernels' routes (what clients get), read with `ip -j`."""

from __future__ import annotations

import ipaddress
import time

from .netns import ip_json
from .topology import ROUTER, ROUTERS, VIP_V4, LbHost, host_named
from .workspace import wait_until

__all__ = ["Fib"]


class Fib:
    def __init__(self, hosts: list[LbHost]) -> None:
        self._hosts = hosts

    def next_hops(self, prefix: str = VIP_V4, router: str = ROUTER) -> dict[str, int]:
        """Next hops (gateway -> weight) of a router's kernel route for `prefix`."""
        family = "-6" if ":" in prefix else "-4"
        routes = ip_json("-n", router, family, "route", "show", prefix.split("/")[0])
        hops: dict[str, int] = {}
        for route in routes:
            if route.get("dst") not in (prefix, prefix.split("/")[0]):
                continue
            if "nexthops" in route:
                for hop in route["nexthops"]:
                    hops[hop["gateway"]] = hop.get("weight", 1)
            elif "gateway" in route:
                hops[route["gateway"]] = 1
        return hops

    def every_router(self, prefix: str = VIP_V4) -> dict[str, set[str]]:
        """Every router's next hops for `prefix`."""
        return {router.name: set(self.next_hops(prefix, router.name)) for router in ROUTERS}

    def count(self, within: str, router: str = ROUTER) -> int:
        """How many BGP routes the router's kernel holds inside the prefix `within`."""
        network = ipaddress.ip_network(within)
        family = "-4" if network.version == 4 else "-6"
        routes = ip_json("-n", router, family, "route", "show", "proto", "bgp")
        count = 0
        for route in routes:
            dst = ipaddress.ip_network(route["dst"], strict=False)
            if dst.version == network.version and dst.subnet_of(network):  # type: ignore[arg-type]
                count += 1
        return count

    def addresses(self, names: list[str], prefix: str = VIP_V4) -> set[str]:
        """The next hops these hosts are, in `prefix`'s family."""
        hosts = [host_named(self._hosts, n) for n in names]
        return {h.v6 if ":" in prefix else h.v4 for h in hosts}

    def wait(
        self,
        names: list[str],
        prefix: str = VIP_V4,
        timeout: float = 30.0,
        routers: tuple[str, ...] | None = None,
    ) -> float:
        """Wait until the next hops are exactly these hosts in the FIB of every router (or of
        the routers given); return the seconds waited."""
        want = self.addresses(names, prefix)
        which = routers if routers is not None else tuple(r.name for r in ROUTERS)
        started = time.monotonic()
        wait_until(
            lambda: all(set(self.next_hops(prefix, r)) == want for r in which),
            timeout,
            lambda: (
                f"FIBs for {prefix}: "
                + ", ".join(f"{r} {sorted(self.next_hops(prefix, r))}" for r in which)
                + f"; want {sorted(want)}"
            ),
            poll_s=0.01,
        )
        return time.monotonic() - started
