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
import functools
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from string import Template
from typing import Any

import yaml

from .netns import (
    LabError,
    alive,
    existing_namespaces,
    ip,
    ip_json,
    kill_namespace_processes,
    netns_exec,
    spawn,
)
from .prometheus import PROMETHEUS, PROMETHEUS_V4, ROOT_PORT, ROOT_PORT_V4, PrometheusMixin
from .topology import (
    CLIENT,
    CLIENT_PREFIXLEN_V4,
    LAB_BGP_SECRET,
    LAN_V4_PREFIXLEN,
    ROUTER,
    ROUTER_AS,
    ROUTERS,
    SWITCH,
    VIP_V4,
    VIP_V6,
    LbHost,
    Router,
    lb_hosts,
)

__all__ = ["DEFAULT_WORKDIR", "Lab", "LabError", "deploy_dir", "render_with_announcer"]

DEFAULT_WORKDIR = Path("/tmp/announcer-lab")
FRR_BIN = Path("/usr/lib/frr")
BIN = Path(sys.executable).parent


def deploy_dir() -> Path:
    found = Path(__file__).resolve().parents[2] / "deploy" / "lab"
    if not found.is_dir():
        raise LabError(f"cannot find the lab's configs at {found}: run the lab from a checkout")
    return found


def _render(template: str, **values: object) -> str:
    return Template((deploy_dir() / template).read_text()).substitute(
        {k: str(v) for k, v in values.items()}
    )


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


class Lab(PrometheusMixin):
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
    ) -> None:
        self.workdir = workdir
        self.hosts = lb_hosts(hosts, haproxy_hosts)
        # another announcer inside ExaBGP (the benchmark's bundled healthcheck): its exabgp.conf
        self._exabgp_config = exabgp_config
        self._plugin_overrides = plugin_overrides
        self._failing_at_start = failing_at_start
        self._wrong_password = wrong_password
        self.bfd = bfd  # run bfdd on the hosts (the routers always run it)
        self.bfd_gate = bfd_gate  # announce to a router only while BFD to it is up
        self._unassigned = unassigned  # hosts whose VIPs are not put on lo by the lab
        self.prometheus = prometheus  # a Prometheus in its own namespace, scraping every host
        self._children: list[subprocess.Popen[bytes]] = []
        self.routers = ROUTERS

    # ---------------------------------------------------------------- names and paths
    @property
    def namespaces(self) -> list[str]:
        return [
            SWITCH,
            *(r.name for r in ROUTERS),
            *(h.name for h in self.hosts),
            *(r.client for r in ROUTERS),
            *([PROMETHEUS] if self.prometheus else []),
        ]

    def router(self, name: str) -> Router:
        return next(r for r in ROUTERS if r.name == name)

    def host(self, name: str) -> LbHost:
        return next(h for h in self.hosts if h.name == name)

    def dir(self, namespace: str) -> Path:
        return self.workdir / namespace

    @property
    def vty(self) -> Path:
        return self.dir(ROUTER)

    def bfdd_dir(self, host: str) -> Path:
        return self.dir(host) / "bfdd"

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
            self._prepare_workdir()
            self._build_network()
            for router in ROUTERS:
                self._start_router(router.name)
            for host in self.hosts:
                self._start_host(host)
            if self.prometheus:
                self._start_prometheus()
        except BaseException:
            self.down()
            raise

    def running(self) -> bool:
        return bool(existing_namespaces() & set(self.namespaces))

    def down(self) -> None:
        """Stop everything the lab started and remove its namespaces (idempotent)."""
        present = existing_namespaces()
        errors: list[str] = []
        for namespace in [*self.namespaces, *_recorded_namespaces(self.workdir)]:
            if namespace in present:
                # one namespace that fails to clean up must not leave the others behind
                try:
                    kill_namespace_processes(namespace)
                except Exception as error:  # reported below, once the rest is down
                    errors.append(f"{namespace}: {error!r}")
                ip("netns", "delete", namespace, check=False)
        if ROOT_PORT in ip("-o", "link", "show", check=False):
            ip("link", "delete", ROOT_PORT, check=False)
        # processes started with `ip netns exec` that already left (none should remain)
        for pid in _recorded_pids(self.workdir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for child in self._children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
        self._children.clear()
        if errors:
            raise LabError("lab down: " + "; ".join(errors))

    def _prepare_workdir(self) -> None:
        for parent in self.workdir.resolve().parents:
            if parent.exists() and not os.stat(parent).st_mode & 0o001:
                raise LabError(
                    f"{parent} is not traversable by other users; FRR (user frr) needs to reach "
                    f"{self.workdir}: choose another --workdir"
                )
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        for namespace in self.namespaces:
            (self.dir(namespace) / "tmp").mkdir(parents=True)
        self.workdir.chmod(0o755)
        (self.workdir / "lab.json").write_text(
            json.dumps({"namespaces": self.namespaces, "pids": []})
        )

    def start_process(
        self, namespace: str, argv: list[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        process = spawn(namespace, argv, log, env)
        self._children.append(process)
        path = self.workdir / "lab.json"
        state = json.loads(path.read_text())
        state["pids"].append(process.pid)
        path.write_text(json.dumps(state))
        return process

    def _build_network(self) -> None:
        for namespace in self.namespaces:
            ip("netns", "add", namespace)
            ip("-n", namespace, "link", "set", "lo", "up")
            _sysctl(namespace, "net.ipv6.conf.all.accept_dad", "0")
            _sysctl(namespace, "net.ipv6.conf.default.accept_dad", "0")
        ip("-n", SWITCH, "link", "add", "br0", "type", "bridge")
        ip("-n", SWITCH, "link", "set", "br0", "up")
        for router in ROUTERS:
            for key in (
                "net.ipv4.ip_forward",
                "net.ipv6.conf.all.forwarding",
                "net.ipv4.fib_multipath_hash_policy",
                "net.ipv6.fib_multipath_hash_policy",
            ):
                _sysctl(router.name, key, "1")
            self._plug(router.name)
            ip("-n", router.name, "addr", "add", f"{router.v4}/{LAN_V4_PREFIXLEN}", "dev", "eth0")
            ip("-n", router.name, "addr", "add", f"{router.v6}/64", "dev", "eth0", "nodad")
            self._client_link(router)
        for host in self.hosts:
            self._plug(host.name)
            ip("-n", host.name, "addr", "add", f"{host.v4}/{LAN_V4_PREFIXLEN}", "dev", "eth0")
            ip("-n", host.name, "addr", "add", f"{host.v6}/64", "dev", "eth0", "nodad")
            if host.name not in self._unassigned:
                self.assign_vips(host.name)
            self.host_routes(host.name)
        if self.prometheus:
            self._plug(PROMETHEUS)
            ip(
                "-n",
                PROMETHEUS,
                "addr",
                "add",
                f"{PROMETHEUS_V4}/{LAN_V4_PREFIXLEN}",
                "dev",
                "eth0",
            )
            self._reach_from_here()

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
            "link",
            "add",
            "eth0",
            "netns",
            namespace,
            "type",
            "veth",
            "peer",
            "name",
            namespace,
            "netns",
            SWITCH,
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
            "link",
            "add",
            "eth0",
            "netns",
            router.client,
            "type",
            "veth",
            "peer",
            "name",
            router.client,
            "netns",
            router.name,
        )
        gw4 = f"{router.client_gw_v4}/{CLIENT_PREFIXLEN_V4}"
        ip("-n", router.name, "addr", "add", gw4, "dev", router.client)
        ip(
            "-n",
            router.name,
            "addr",
            "add",
            f"{router.client_gw_v6}/64",
            "dev",
            router.client,
            "nodad",
        )
        ip("-n", router.name, "link", "set", router.client, "up")
        client4 = f"{router.client_v4}/{CLIENT_PREFIXLEN_V4}"
        ip("-n", router.client, "addr", "add", client4, "dev", "eth0")
        ip("-n", router.client, "addr", "add", f"{router.client_v6}/64", "dev", "eth0", "nodad")
        ip("-n", router.client, "link", "set", "eth0", "up")
        ip("-n", router.client, "route", "add", "default", "via", router.client_gw_v4)
        ip("-n", router.client, "-6", "route", "add", "default", "via", router.client_gw_v6)

    def freeze_host(self, name: str, frozen: bool) -> None:
        """SIGSTOP (or SIGCONT) every process of a host: nginx, ExaBGP, the plugin, bfdd."""
        for pid in [int(p) for p in ip("netns", "pids", name, check=False).split()]:
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
            _wait_until(
                lambda: "LOWER_UP" in ip("-n", name, "link", "show", "eth0"), 10, "link not up"
            )
            self.host_routes(name)

    # ---------------------------------------------------------------- the router
    def _start_router(self, name: str) -> None:
        d = self.dir(name)
        # the very files deploy/lab/compose.yaml mounts: no templating
        for daemon in FRR_DAEMONS:
            shutil.copy(deploy_dir() / "frr" / name / f"{daemon}.conf", d / f"{daemon}.conf")
        # FRR drops to user frr: its folder must belong to it
        shutil.chown(d, "frr", "frr")
        for path in d.iterdir():
            shutil.chown(path, "frr", "frr")
        self.start_frr(name)

    def _frr_argv(self, daemon: str, d: Path) -> list[str]:
        argv = [
            str(FRR_BIN / daemon),
            "-f",
            str(d / f"{daemon}.conf"),
            "-i",
            str(d / f"{daemon}.pid"),
            "-z",
            str(d / "zserv.api"),
            "--vty_socket",
            str(d),
            "--log",
            f"file:{d / daemon}.log",
            "--log-level",
            "informational",
        ]
        if daemon == "bfdd":
            return [*argv, "--bfdctl", str(d / "bfdd.sock")]
        return [*argv, "-P", "0"]

    def start_frr(self, router: str = ROUTER) -> None:
        d = self.dir(router)
        self.start_process(router, self._frr_argv("zebra", d), d / "zebra.out")
        _wait_until(lambda: (d / "zserv.api").exists(), 10, "zebra did not start")
        self.start_process(router, self._frr_argv("bfdd", d), d / "bfdd.out")
        _wait_until(lambda: (d / "bfdd.vty").exists(), 10, "bfdd did not start")
        self.start_process(router, self._frr_argv("bgpd", d), d / "bgpd.out")
        _wait_until(lambda: (d / "bgpd.vty").exists(), 10, "bgpd did not start")

    def stop_frr(self, router: str = ROUTER) -> None:
        d = self.dir(router)
        for daemon in ("bgpd", "bfdd", "zebra"):
            _stop_daemon(d, daemon)
        (d / "zserv.api").unlink(missing_ok=True)

    # ---------------------------------------------------------------- bfdd on a host
    def start_host_bfdd(self, name: str) -> None:
        d = self.bfdd_dir(name)
        self.start_process(name, self._frr_argv("bfdd", d), d / "bfdd.out")
        _wait_until(lambda: (d / "bfdd.vty").exists(), 10, f"{name}: bfdd did not start")

    def stop_host_bfdd(self, name: str, signum: int = signal.SIGKILL) -> None:
        _stop_daemon(self.bfdd_dir(name), "bfdd", signum)

    def wait_bfd(self, names: list[str] | None = None, timeout: float = 30.0) -> None:
        """Until every router's BFD sessions with these hosts (IPv4 and IPv6) are up: only a
        session that was up and then goes down takes a host out."""
        hosts = [self.host(n) for n in names] if names else self.hosts
        want = {address for h in hosts for address in (h.v4, h.v6)}
        _wait_until(
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

    def bfd_peers(self, router: str = ROUTER) -> dict[str, str]:
        """The router's BFD sessions: peer address -> up, down, init."""
        peers = self.vtysh_json("show bfd peers json", router) or []
        return {peer["peer"]: peer["status"] for peer in peers}

    def vtysh(self, command: str, router: str = ROUTER) -> str:
        result = subprocess.run(
            ["vtysh", "--vty_socket", str(self.dir(router)), "-c", command],
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

    # ---------------------------------------------------------------- LB hosts
    def plugin_config(self, host: LbHost) -> dict[str, Any]:
        d = self.dir(host.name)
        neighbors: list[dict[str, Any]] = []
        for router in ROUTERS:
            for address, local in ((router.v4, None), (router.v6, host.v6)):
                neighbor: dict[str, Any] = {
                    "address": address,
                    "peer_as": ROUTER_AS,
                    "hold_time": 3,
                    "password_file": str(d / "bgp-secret"),
                }
                if local is not None:
                    neighbor["local_address"] = local
                if self.bfd:
                    neighbor["bfd"] = {
                        "interval": "100ms",
                        "multiplier": 3,
                        "gate": self.bfd_gate,
                    }
                neighbors.append(neighbor)
        config: dict[str, Any] = {
            "bgp": {"local_as": host.asn, "router_id": host.v4, "neighbors": neighbors},
            "checks": {
                "web": {
                    "http": {"url": "http://127.0.0.1/health", "expect_body": "ok"},
                    "interval": "1s",
                    "timeout": "250ms",
                },
            },
            "vips": [
                {"prefix": VIP_V4, "checks": ["web", "lb"]},
                {"prefix": VIP_V6, "checks": ["web", "lb"]},
            ],
            "drain": {"file": str(d / "drain"), "gshut_period": "2s"},
            # Prometheus scrapes every host from its own namespace: the API listens on all
            # addresses, so POSTs need the token (the lab's CLI calls pass it)
            "api": {"listen": "0.0.0.0:9180", "token_file": str(d / "api-token")},
            "bfdd": {
                "vty_socket": str(self.bfdd_dir(host.name)),
                "control_socket": str(self.bfdd_dir(host.name) / "bfdd.sock"),
                "poll_interval": "1s",
            },
        }
        if host.kind == "nginx":
            config["checks"]["lb"] = {
                "nginx": {"url": "http://127.0.0.1/nginx_status"},
                "interval": "1s",
                "timeout": "250ms",
            }
        else:
            config["checks"]["lb"] = {
                "haproxy": {
                    "socket": str(d / "haproxy.sock"),
                    "frontend": "www",
                    "backend": "web",
                    "min_up": 1,
                },
                "interval": "1s",
                "timeout": "250ms",
            }
        if self._plugin_overrides is not None:
            self._plugin_overrides(host, config)
        return config

    def _start_host(self, host: LbHost) -> None:
        d = self.dir(host.name)
        listen = {"listen_v4": "0.0.0.0:80", "listen_v6": "[::]:80"}
        if host.kind == "nginx":
            (d / "nginx.conf").write_text(_render("nginx-lb.conf", dir=d, name=host.name, **listen))
        else:
            (d / "backends.conf").write_text(_render("nginx-backends.conf", dir=d, name=host.name))
            (d / "haproxy.cfg").write_text(_render("haproxy.cfg", dir=d, **listen))
        if host.name in self._failing_at_start:
            self.set_health_failing(host.name, True)
        secret = (
            "not-the-" + LAB_BGP_SECRET if host.name in self._wrong_password else LAB_BGP_SECRET
        )
        # secrets are private files: the plugin refuses one that other users can read
        for name, text in (("bgp-secret", secret), ("api-token", f"lab-api-token-{host.name}")):
            (d / name).touch(mode=0o600)
            (d / name).write_text(text + "\n")
        self.start_service(host.name)
        if host.kind == "haproxy":
            self.start_backends(host.name)
        (d / "announcer.yaml").write_text(yaml.safe_dump(self.plugin_config(host), sort_keys=False))
        if self._exabgp_config is not None:
            (d / "exabgp.conf").write_text(self._exabgp_config(host, d))
        else:
            rendered = render_with_announcer("exabgp-config", d / "announcer.yaml")
            (d / "exabgp.conf").write_text(rendered)
        if self.bfd:
            self._write_host_bfdd(host)
            self.start_host_bfdd(host.name)
        self.start_exabgp(host.name)

    def _write_host_bfdd(self, host: LbHost) -> None:
        d = self.bfdd_dir(host.name)
        d.mkdir()
        rendered = render_with_announcer("bfd-config", self.dir(host.name) / "announcer.yaml")
        (d / "bfdd.conf").write_text(rendered)
        shutil.chown(d, "frr", "frr")
        shutil.chown(d / "bfdd.conf", "frr", "frr")

    def start_service(self, name: str) -> None:
        """nginx (with its health endpoint) or HAProxy, the LB itself."""
        host, d = self.host(name), self.dir(name)
        if host.kind == "nginx":
            # by its full path: the binary upgrade re-executes argv[0] without a PATH search
            nginx = shutil.which("nginx") or "nginx"
            argv = [nginx, "-c", str(d / "nginx.conf"), "-e", str(d / "nginx-error.log")]
            self.start_process(name, argv, d / "nginx.out")
        else:
            # master-worker, as packaged HAProxy runs: a reload (SIGUSR2 to the master) starts
            # new workers that take the listening sockets over from the old ones; the pid file
            # holds the master's pid (it keeps it across reloads: it re-executes itself)
            pidfile = str(d / "haproxy.pid")
            argv = ["haproxy", "-W", "-db", "-f", str(d / "haproxy.cfg"), "-p", pidfile]
            self.start_process(name, argv, d / "haproxy.out")
        _wait_until(lambda: self._listening(name, 80), 10, f"{name}: LB did not start")

    def start_backends(self, name: str) -> None:
        d = self.dir(name)
        argv = ["nginx", "-c", str(d / "backends.conf"), "-e", str(d / "backends-error.log")]
        self.start_process(name, argv, d / "backends.out")
        _wait_until(lambda: self._listening(name, 8082), 10, f"{name}: no backends")

    def _listening(self, namespace: str, port: int) -> bool:
        out = netns_exec(namespace, "ss", "-Hltn", check=False)
        return any(
            line.split()[3].endswith(f":{port}")
            for line in out.splitlines()
            if len(line.split()) > 3
        )

    def start_exabgp(self, name: str) -> None:
        d = self.dir(name)
        env = {
            "exabgp.api.cli": "false",
            "exabgp.api.ack": "true",
            "exabgp.daemon.user": getpass.getuser(),
            "exabgp.daemon.daemonize": "false",
            "exabgp.log.destination": "stdout",
            "exabgp.log.level": "INFO",
            # the lab's tests may make a plugin task fail on purpose (SIGUSR2)
            "ANNOUNCER_FAULT_HOOK": "1",
        }
        self.start_process(
            name, [str(BIN / "exabgp"), "server", str(d / "exabgp.conf")], d / "exabgp.log", env
        )

    # ---------------------------------------------------------------- what to break
    def pids(self, namespace: str, *fragments: str) -> list[int]:
        pids = []
        for pid in [int(p) for p in ip("netns", "pids", namespace, check=False).split()]:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # gone, or exiting while read (ESRCH)
                continue
            if all(f in cmdline for f in fragments) and alive(pid):
                pids.append(pid)
        return pids

    def service_pids(self, name: str) -> list[int]:
        host, d = self.host(name), self.dir(name)
        if host.kind == "nginx":
            return self.pids(name, "nginx", str(d / "nginx.conf")) + self.pids(
                name, "nginx: worker"
            )
        return self.pids(name, "haproxy", str(d / "haproxy.cfg"))

    def stop_service(self, name: str, signum: int = signal.SIGTERM) -> None:
        """Stop nginx/HAProxy on a host, the way a crash (SIGKILL) or a stop (SIGTERM) does."""
        host, d = self.host(name), self.dir(name)
        # the master: it stops its workers (HAProxy's master-worker, nginx's master)
        masters = (
            self.pids(name, "nginx", "-c", str(d / "nginx.conf"))
            if host.kind == "nginx"
            else [self.master_pid(name)]
        )
        for pid in masters:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signum) if signum == signal.SIGKILL else os.kill(pid, signum)
        _wait_until(lambda: not self._listening(name, 80), 10, f"{name}: still up")

    def stop_backends(self, name: str) -> None:
        for pid in self.pids(name, "nginx", "-c", str(self.dir(name) / "backends.conf")):
            os.kill(pid, signal.SIGTERM)
        _wait_until(lambda: not self._listening(name, 8082), 10, "backends still up")

    def set_health_failing(self, name: str, failing: bool) -> None:
        flag = self.dir(name) / "health-fail"
        if failing:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def freeze_service(self, name: str, frozen: bool) -> None:
        """SIGSTOP the LB: it still accepts TCP connections (the kernel does) but never answers."""
        for pid in self.service_pids(name):
            os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def plugin_pids(self, name: str) -> list[int]:
        return self.pids(name, "announcer", "run", "-c")

    def exabgp_pid(self, name: str) -> int | None:
        pids = self.pids(name, "exabgp", "server")
        return pids[0] if pids else None

    def stop_exabgp(self, name: str, signum: int = signal.SIGTERM) -> None:
        pid = self.exabgp_pid(name)
        if pid is not None:
            os.kill(pid, signum)
            _wait_until(lambda: not alive(pid), 10, f"{name}: ExaBGP did not stop")

    def drain_file(self, name: str) -> Path:
        return self.dir(name) / "drain"

    def announcer(self, name: str, *args: str, check: bool = True) -> str:
        """Run the announcer CLI inside a host, with the host's API token."""
        return netns_exec(
            name,
            str(BIN / "announcer"),
            *args,
            "--api",
            "http://127.0.0.1:9180",
            "--token-file",
            str(self.dir(name) / "api-token"),
            check=check,
        )

    # ---------------------------------------------------------------- reloads
    def master_pid(self, name: str) -> int:
        # from the pid file: telling the master from the process tree races with old workers
        # that exit while it is read (a reload under traffic looked like three masters). A
        # reloading HAProxy master rewrites the file (empty for a moment): read it again.
        pidfile = self.dir(name) / (
            "nginx.pid" if self.host(name).kind == "nginx" else "haproxy.pid"
        )
        pid: list[int] = []

        def read() -> bool:
            with contextlib.suppress(OSError, ValueError):
                pid.append(int(pidfile.read_text()))
            return bool(pid)

        _wait_until(read, 5, f"{name}: no master pid in {pidfile}", poll_s=0.01)
        return pid[0]

    def workers(self, name: str, master: int | None = None) -> set[int]:
        master = self.master_pid(name) if master is None else master
        return {p for p in self.service_pids(name) if _parent(p) == master}

    def reload_service(self, name: str, timeout: float = 10.0) -> None:
        """`nginx -s reload` (SIGHUP to the master) or a HAProxy master-worker reload (SIGUSR2:
        the master re-executes itself, new workers start, the old ones get -sf); returns once
        new workers run. Old workers finish their open connections first (HAProxy's, an idle
        one, until `timeout client`), as they do in production."""
        # a reload keeps the master's pid (HAProxy's re-executes itself)
        master = self.master_pid(name)
        before = self.workers(name, master)
        os.kill(master, signal.SIGHUP if self.host(name).kind == "nginx" else signal.SIGUSR2)
        _wait_until(lambda: bool(self.workers(name, master) - before), timeout, "no new workers")

    def upgrade_nginx(self, name: str, timeout: float = 10.0) -> None:
        """nginx's binary upgrade: USR2 starts a new master (the old pid file becomes
        .oldbin) with the same listening sockets, WINCH and QUIT retire the old one."""
        d = self.dir(name)
        old = self.master_pid(name)
        os.kill(old, signal.SIGUSR2)

        def new_master() -> bool:
            # nginx renames the pid file to .oldbin before the new master writes its own: a read
            # can fall between the two (seen in CI), which is "not yet", not an error
            try:
                return (d / "nginx.pid").read_text().strip() not in ("", str(old))
            except OSError:
                return False

        _wait_until(new_master, timeout, "no new nginx master")
        os.kill(old, signal.SIGWINCH)
        os.kill(old, signal.SIGQUIT)
        _wait_until(functools.partial(_gone, old), timeout, "the old nginx master stays")

    def haproxy_command(self, name: str, command: str) -> str:
        """A command on the host's HAProxy runtime API (a UNIX socket: reachable from here)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.dir(name) / "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def updates_received(self, name: str, ipv6: bool = False, router: str = ROUTER) -> int:
        """BGP UPDATE messages a router has received on a host's session."""
        address = self.host(name).v6 if ipv6 else self.host(name).v4
        neighbor = self.vtysh_json(f"show bgp neighbors {address} json", router)[address]
        return int(neighbor["messageStats"]["updatesRecv"])

    def bgp_paths(self, prefix: str = VIP_V4, router: str = ROUTER) -> dict[str, dict[str, Any]]:
        """A router's BGP paths for a prefix, by next hop."""
        family = "ipv6" if ":" in prefix else "ipv4"
        data = self.vtysh_json(f"show bgp {family} unicast {prefix} json", router)
        return {p["nexthops"][0]["ip"]: p for p in data.get("paths", [])}

    # ---------------------------------------------------------------- what the router sees
    def fib(self, prefix: str = VIP_V4, router: str = ROUTER) -> dict[str, int]:
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

    def fib_count(self, within: str, router: str = ROUTER) -> int:
        """How many BGP routes the router's kernel holds inside the prefix `within`."""
        import ipaddress

        network = ipaddress.ip_network(within)
        routes = ip_json(
            "-n", router, "-4" if network.version == 4 else "-6", "route", "show", "proto", "bgp"
        )
        count = 0
        for route in routes:
            dst = ipaddress.ip_network(route["dst"], strict=False)
            if dst.version == network.version and dst.subnet_of(network):  # type: ignore[arg-type]
                count += 1
        return count

    def host_addresses(self, names: list[str], prefix: str = VIP_V4) -> set[str]:
        return {self.host(n).v6 if ":" in prefix else self.host(n).v4 for n in names}

    def fibs(self, prefix: str = VIP_V4) -> dict[str, set[str]]:
        """Every router's next hops for `prefix`."""
        return {router.name: set(self.fib(prefix, router.name)) for router in ROUTERS}

    def wait_fib(
        self,
        names: list[str],
        prefix: str = VIP_V4,
        timeout: float = 30.0,
        routers: tuple[str, ...] | None = None,
    ) -> float:
        """Wait until the next hops are exactly these hosts in the FIB of every router (or of
        the routers given); return the seconds waited."""
        want = self.host_addresses(names, prefix)
        which = routers if routers is not None else tuple(r.name for r in ROUTERS)
        started = time.monotonic()
        _wait_until(
            lambda: all(set(self.fib(prefix, r)) == want for r in which),
            timeout,
            lambda: (
                f"FIBs for {prefix}: "
                + ", ".join(f"{r} {sorted(self.fib(prefix, r))}" for r in which)
                + f"; want {sorted(want)}"
            ),
            poll_s=0.01,
        )
        return time.monotonic() - started

    def sessions_up(self, router: str = ROUTER) -> int:
        summary = self.vtysh_json("show bgp summary json", router)
        return sum(
            1
            for family in summary.values()
            if isinstance(family, dict)
            for peer in family.get("peers", {}).values()
            if peer.get("state") == "Established"
        )

    # ---------------------------------------------------------------- the client
    def client_requests(
        self,
        count: int,
        url: str = "http://192.0.2.10/",
        interval_s: float = 0.0,
        timeout_s: float = 1.0,
        client: str = CLIENT,
    ) -> list[dict[str, Any]]:
        out = netns_exec(
            client,
            *_client_argv(url, count, interval_s, timeout_s),
            timeout=count * (interval_s + timeout_s) + 30,
        )
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def start_client(
        self, url: str, count: int, interval_s: float, log: Path, client: str = CLIENT
    ) -> subprocess.Popen[bytes]:
        argv = _client_argv(url, count, interval_s, 1.0)
        return self.start_process(client, argv, log)


@contextlib.contextmanager
def running_lab(lab: Lab) -> Iterator[Lab]:
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


def render_with_announcer(command: str, config: Path) -> str:
    """What `announcer exabgp-config` or `announcer bfd-config` renders from a host's config:
    the lab configures its daemons with the product's own commands."""
    rendered = subprocess.run(
        [str(BIN / "announcer"), command, "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if rendered.returncode != 0:
        raise LabError(f"{config}: {command} failed: {rendered.stderr}")
    return rendered.stdout


def _sysctl(namespace: str, key: str, value: str) -> None:
    netns_exec(namespace, "sysctl", "-qw", f"{key}={value}")


def _client_argv(url: str, count: int, interval_s: float, timeout_s: float) -> list[str]:
    return [
        sys.executable,
        "-m",
        "announcer.lab.traffic",
        "--url",
        url,
        "--count",
        str(count),
        "--interval",
        str(interval_s),
        "--timeout",
        str(timeout_s),
    ]


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def _gone(pid: int) -> bool:
    return not alive(pid)


FRR_DAEMONS = ("zebra", "bgpd", "bfdd")


def _stop_daemon(d: Path, daemon: str, signum: int = signal.SIGTERM) -> None:
    pid_file = d / f"{daemon}.pid"
    with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
        pid = int(pid_file.read_text())
        os.kill(pid, signum)
        _wait_until(functools.partial(_gone, pid), 10, f"{daemon} did not stop")
    (d / f"{daemon}.vty").unlink(missing_ok=True)


def _wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    message: str | Callable[[], str],
    poll_s: float = 0.05,
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise LabError(message() if callable(message) else message)
        time.sleep(poll_s)


def _recorded_namespaces(workdir: Path) -> list[str]:
    with contextlib.suppress(OSError, ValueError, KeyError):
        return list(json.loads((workdir / "lab.json").read_text())["namespaces"])
    return []


def _recorded_pids(workdir: Path) -> list[int]:
    with contextlib.suppress(OSError, ValueError, KeyError):
        return [int(p) for p in json.loads((workdir / "lab.json").read_text())["pids"]]
    return []
