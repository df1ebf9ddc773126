"""The namespace lab: bring it up, poke it, read the routers, take it down.

One network namespace per host: `r1` and `r2` (FRR zebra + bgpd + bfdd, a ToR pair),
`lb1..lbN` (nginx or HAProxy, ExaBGP with this plugin, bfdd), `sw` (the switch: a bridge with
one port per router and host, so a dead host's link can be cut without the router's own port
going down), `client` behind r1 and `client2` behind r2. Every BGP session carries a TCP MD5
password and is watched by BFD. Everything the lab starts lives in its namespaces, so `down`
can find and stop it even after the process that started it died.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .announcers import Announcers
from .clients import Clients
from .fib import Fib
from .netns import LabError, existing_namespaces, ip, kill_namespace_processes
from .network import Network
from .prometheus import PROMETHEUS, Prometheus
from .routers import Routers
from .services import Services
from .topology import (
    DEFAULT_WORKDIR,
    LAB_BGP_SECRET,
    ROUTERS,
    SWITCH,
    LbHost,
    Router,
    host_named,
    lb_hosts,
    slot_address,
    slots_backed,
)
from .workspace import (
    BIN,
    FRR_BIN,
    Workspace,
    deploy_dir,
    render_template,
    render_with_announcer,
    write_secrets,
)

__all__ = ["DEFAULT_WORKDIR", "Lab", "LabError", "deploy_dir", "render_with_announcer"]


def _require_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces)")
    for tool in ("ip", "nginx", "haproxy", "vtysh"):
        if shutil.which(tool) is None:
            raise LabError(f"{tool} not found: run scripts/setup.sh")
    for daemon in ("zebra", "bgpd", "bfdd"):
        if not (FRR_BIN / daemon).exists():
            raise LabError(f"{FRR_BIN / daemon} not found: run scripts/setup.sh")
    if not (BIN / "exabgp").exists():
        raise LabError(f"{BIN / 'exabgp'} not found: run scripts/setup.sh")


class Lab:
    """The lab, made of its parts: `net` (namespaces, cables, what breaks them), `frr` (the
    routers' daemons and control planes), `fib` (what the routers forward), `services` (the
    load balancers), `announcers` (ExaBGP, the plugin and bfdd on each host), `clients`
    (traffic), `prometheus` (when asked for). `up` builds it, `down` removes all of it."""

    def __init__(
        self,
        workdir: Path = DEFAULT_WORKDIR,
        hosts: int = 3,
        plugin_overrides: Callable[[LbHost, dict[str, Any]], None] | None = None,
        failing_at_start: frozenset[str] = frozenset(),
        haproxy_hosts: int = 1,
        exabgp_config: Callable[[LbHost, Path], str] | None = None,
        wrong_password: frozenset[str] = frozenset(),
        bfd: bool = True,
        bfd_gate: bool = True,
        unassigned: frozenset[str] = frozenset(),
        prometheus: bool = False,
        packaged: Mapping[str, Path] | None = None,
        stable: bool = False,
        exabgp_env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.hosts = lb_hosts(hosts, haproxy_hosts)
        self.routers = ROUTERS
        self._failing_at_start = failing_at_start
        self._wrong_password = wrong_password
        self.space = Workspace(workdir, self._namespaces(prometheus))
        self.net = Network(self.hosts, unassigned, prometheus)
        self.frr = Routers(self.space, self.hosts)
        self.fib = Fib(self.hosts)
        self.services = Services(self.space, self.hosts)
        # bfd: bfdd on the hosts (the routers always run it); bfd_gate: announce to a router
        # only while BFD to it is up
        # packaged: hosts that run an unpacked Debian package's files (host -> its folder)
        # stable: stable next hops (slots moved by keepalived on every host)
        self.slots = (
            {h.name: slots_backed(h, len(self.hosts)) for h in self.hosts} if stable else {}
        )
        self.announcers = Announcers(
            self.space,
            bfd,
            bfd_gate,
            plugin_overrides,
            exabgp_config,
            packaged,
            self.slots,
            exabgp_env,
        )
        self.clients = Clients(self.space)
        # a Prometheus in its own namespace, scraping every host
        self.prometheus = Prometheus(self.space, self.hosts) if prometheus else None

    def _namespaces(self, prometheus: bool) -> list[str]:
        return [
            SWITCH,
            *(r.name for r in ROUTERS),
            *(h.name for h in self.hosts),
            *(r.client for r in ROUTERS),
            *([PROMETHEUS] if prometheus else []),
        ]

    @property
    def namespaces(self) -> list[str]:
        return self.space.namespaces

    def router(self, name: str) -> Router:
        return next(r for r in ROUTERS if r.name == name)

    def host(self, name: str) -> LbHost:
        return host_named(self.hosts, name)

    def dir(self, namespace: str) -> Path:
        return self.space.dir(namespace)

    def slot_holders(self) -> dict[str, list[str]]:
        return self.announcers.slot_holders()

    def slot_addresses(self) -> set[str]:
        """Every slot's address (stable next hops; empty without)."""
        return {slot_address(number) for slots in self.slots.values() for number, _ in slots}

    # ---------------------------------------------------------------- up and down
    def up(self) -> None:
        _require_tools()
        if self.running():
            raise LabError(
                "a lab is still running (namespaces "
                + ", ".join(sorted(existing_namespaces() & set(self.namespaces)))
                + "): run `announcer lab down` first"
            )
        try:
            self.space.prepare()
            self.net.build(self.namespaces)
            for router in ROUTERS:
                self.frr.install(router.name)
            for host in self.hosts:
                self._start_host(host)
            if self.slots:
                self.announcers.start_slots([h.name for h in self.hosts])
            if self.prometheus is not None:
                self.prometheus.start()
        except BaseException:
            self.down()
            raise

    def running(self) -> bool:
        return bool(existing_namespaces() & set(self.namespaces))

    def down(self) -> None:
        """Stop everything the lab started and remove its namespaces (idempotent)."""
        present = existing_namespaces()
        errors: list[str] = []
        for namespace in [*self.namespaces, *self.space.recorded_namespaces()]:
            if namespace in present:
                # one namespace that fails to clean up must not leave the others behind
                try:
                    kill_namespace_processes(namespace)
                except Exception as error:  # reported below, once the rest is down
                    errors.append(f"{namespace}: {error!r}")
                ip("netns", "delete", namespace, check=False)
        self.net.remove_root_port()
        self.space.reap()
        if errors:
            raise LabError("lab down: " + "; ".join(errors))

    def _start_host(self, host: LbHost) -> None:
        """The host's load balancer (its config from deploy/lab/, its health), its secrets,
        then ExaBGP with the plugin and bfdd."""
        d = self.dir(host.name)
        listen = {"listen_v4": "0.0.0.0:80", "listen_v6": "[::]:80"}
        if host.kind == "nginx":
            conf = render_template("nginx-lb.conf", dir=d, name=host.name, **listen)
            (d / "nginx.conf").write_text(conf)
        else:
            conf = render_template("nginx-backends.conf", dir=d, name=host.name)
            (d / "backends.conf").write_text(conf)
            (d / "haproxy.cfg").write_text(render_template("haproxy.cfg", dir=d, **listen))
        if host.name in self._failing_at_start:
            self.services.set_health_failing(host.name, True)
        secret = (
            "not-the-" + LAB_BGP_SECRET if host.name in self._wrong_password else LAB_BGP_SECRET
        )
        write_secrets(d, host.name, secret)
        self.services.start(host.name)
        if host.kind == "haproxy":
            self.services.start_backends(host.name)
        self.announcers.install(host)


@contextlib.contextmanager
def running_lab(lab: Lab) -> Iterator[Lab]:
    lab.up()
    try:
        yield lab
    finally:
        lab.down()
