"""The routers' FRR (zebra, bgpd, bfdd, one set per router namespace), and what their control
planes say: BGP sessions, paths and UPDATE counts, BFD sessions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .netns import LabError
from .topology import ROUTER, ROUTERS, VIP_V4, LbHost, host_named
from .workspace import FRR_BIN, Workspace, deploy_dir, stop_daemon, wait_until

__all__ = ["FRR_DAEMONS", "Routers", "frr_argv"]

FRR_DAEMONS = ("zebra", "bgpd", "bfdd")


def frr_argv(daemon: str, d: Path) -> list[str]:
    """An FRR daemon with every file of its own in `d` (several FRRs on one machine)."""
    argv = [
        str(FRR_BIN / daemon),
        *("-f", str(d / f"{daemon}.conf"), "-i", str(d / f"{daemon}.pid")),
        *("-z", str(d / "zserv.api"), "--vty_socket", str(d)),
        *("--log", f"file:{d / daemon}.log", "--log-level", "informational"),
    ]
    if daemon == "bfdd":
        return [*argv, "--bfdctl", str(d / "bfdd.sock")]
    return [*argv, "-P", "0"]


class Routers:
    def __init__(self, space: Workspace, hosts: list[LbHost]) -> None:
        self._space = space
        self._hosts = hosts

    def install(self, name: str) -> None:
        """The router's configuration (the very files deploy/lab/compose.yaml mounts: no
        templating), then its daemons."""
        d = self._space.dir(name)
        for daemon in FRR_DAEMONS:
            shutil.copy(deploy_dir() / "frr" / name / f"{daemon}.conf", d / f"{daemon}.conf")
        # FRR drops to user frr: its folder must belong to it
        shutil.chown(d, "frr", "frr")
        for path in d.iterdir():
            shutil.chown(path, "frr", "frr")
        self.start(name)

    def start(self, router: str = ROUTER) -> None:
        d = self._space.dir(router)
        start = self._space.start_process
        start(router, frr_argv("zebra", d), d / "zebra.out")
        wait_until(lambda: (d / "zserv.api").exists(), 10, "zebra did not start")
        start(router, frr_argv("bfdd", d), d / "bfdd.out")
        wait_until(lambda: (d / "bfdd.vty").exists(), 10, "bfdd did not start")
        start(router, frr_argv("bgpd", d), d / "bgpd.out")
        wait_until(lambda: (d / "bgpd.vty").exists(), 10, "bgpd did not start")

    def stop(self, router: str = ROUTER) -> None:
        d = self._space.dir(router)
        for daemon in ("bgpd", "bfdd", "zebra"):
            stop_daemon(d, daemon)
        (d / "zserv.api").unlink(missing_ok=True)

    def vtysh(self, command: str, router: str = ROUTER) -> str:
        result = subprocess.run(
            ["vtysh", "--vty_socket", str(self._space.dir(router)), "-c", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if result.returncode != 0:
            raise LabError(f"vtysh {command!r}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def vtysh_json(self, command: str, router: str = ROUTER) -> Any:
        return json.loads(self.vtysh(command, router) or "{}")

    def bfd_peers(self, router: str = ROUTER) -> dict[str, str]:
        """The router's BFD sessions: peer address -> up, down, init."""
        peers = self.vtysh_json("show bfd peers json", router) or []
        return {peer["peer"]: peer["status"] for peer in peers}

    def wait_bfd(self, names: list[str] | None = None, timeout: float = 30.0) -> None:
        """Until every router's BFD sessions with these hosts (IPv4 and IPv6) are up: only a
        session that was up and then goes down takes a host out."""
        hosts = [host_named(self._hosts, n) for n in names] if names else self._hosts
        want = {address for h in hosts for address in (h.v4, h.v6)}
        wait_until(
            lambda: all(
                {p for p, status in self.bfd_peers(r.name).items() if status == "up"} >= want
                for r in ROUTERS
            ),
            timeout,
            lambda: (
                "BFD not up: " + ", ".join(f"{r.name} {self.bfd_peers(r.name)}" for r in ROUTERS)
            ),
            poll_s=0.1,
        )

    def updates_received(self, name: str, ipv6: bool = False, router: str = ROUTER) -> int:
        """BGP UPDATE messages a router has received on a host's session."""
        address = host_named(self._hosts, name).v6 if ipv6 else host_named(self._hosts, name).v4
        neighbor = self.vtysh_json(f"show bgp neighbors {address} json", router)[address]
        return int(neighbor["messageStats"]["updatesRecv"])

    def bgp_paths(self, prefix: str = VIP_V4, router: str = ROUTER) -> dict[str, dict[str, Any]]:
        """A router's BGP paths for a prefix, by next hop."""
        family = "ipv6" if ":" in prefix else "ipv4"
        data = self.vtysh_json(f"show bgp {family} unicast {prefix} json", router)
        return {p["nexthops"][0]["ip"]: p for p in data.get("paths", [])}

    def sessions_up(self, router: str = ROUTER) -> int:
        summary = self.vtysh_json("show bgp summary json", router)
        return sum(
            1
            for family in summary.values()
            if isinstance(family, dict)
            for peer in family.get("peers", {}).values()
            if peer.get("state") == "Established"
        )
