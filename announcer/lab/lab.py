"""The namespace lab: bring it up, poke it, read the router, take it down.

One network namespace per host: `r1` (FRR zebra + bgpd), `lb1..lbN` (nginx or HAProxy, ExaBGP
with this plugin), `client`. The LB hosts and r1 share one LAN (a bridge in r1); the client
has its own link to r1. Everything the lab starts lives in its namespaces, so `down` can find
and stop it even after the process that started it died.
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
from .topology import (
    CLIENT,
    CLIENT_V4,
    CLIENT_V6,
    LAN_V4_PREFIXLEN,
    ROUTER,
    ROUTER_AS,
    ROUTER_CLIENT_V4,
    ROUTER_CLIENT_V6,
    ROUTER_V4,
    ROUTER_V6,
    VIP_V4,
    VIP_V6,
    LbHost,
    lb_hosts,
)

__all__ = ["DEFAULT_WORKDIR", "Lab", "LabError", "deploy_dir"]

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
    for daemon in ("zebra", "bgpd"):
        if not (FRR_BIN / daemon).exists():
            raise LabError(f"{FRR_BIN / daemon} not found: run scripts/setup.sh")
    if not (BIN / "exabgp").exists():
        raise LabError(f"{BIN / 'exabgp'} not found: run scripts/setup.sh")


class Lab:
    def __init__(
        self,
        workdir: Path = DEFAULT_WORKDIR,
        hosts: int = 3,
        plugin_overrides: Callable[[LbHost, dict[str, Any]], None] | None = None,
        failing_at_start: frozenset[str] = frozenset(),
        haproxy_hosts: int = 1,
        exabgp_config: Callable[[LbHost, Path], str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.hosts = lb_hosts(hosts, haproxy_hosts)
        # another announcer inside ExaBGP (the benchmark's bundled healthcheck): its exabgp.conf
        self._exabgp_config = exabgp_config
        self._plugin_overrides = plugin_overrides
        self._failing_at_start = failing_at_start
        self._children: list[subprocess.Popen[bytes]] = []

    # ---------------------------------------------------------------- names and paths
    @property
    def namespaces(self) -> list[str]:
        return [ROUTER, *(h.name for h in self.hosts), CLIENT]

    def host(self, name: str) -> LbHost:
        return next(h for h in self.hosts if h.name == name)

    def dir(self, namespace: str) -> Path:
        return self.workdir / namespace

    @property
    def vty(self) -> Path:
        return self.dir(ROUTER)

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
            self._start_router()
            for host in self.hosts:
                self._start_host(host)
        except BaseException:
            self.down()
            raise

    def running(self) -> bool:
        return bool(existing_namespaces() & set(self.namespaces))

    def down(self) -> None:
        """Stop everything the lab started and remove its namespaces (idempotent)."""
        present = existing_namespaces()
        for namespace in [*self.namespaces, *_recorded_namespaces(self.workdir)]:
            if namespace in present:
                kill_namespace_processes(namespace)
                ip("netns", "delete", namespace, check=False)
        # processes started with `ip netns exec` that already left (none should remain)
        for pid in _recorded_pids(self.workdir):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for child in self._children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
        self._children.clear()

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
        for key in (
            "net.ipv4.ip_forward",
            "net.ipv6.conf.all.forwarding",
            "net.ipv4.fib_multipath_hash_policy",
            "net.ipv6.fib_multipath_hash_policy",
        ):
            _sysctl(ROUTER, key, "1")
        ip("-n", ROUTER, "link", "add", "lan", "type", "bridge")
        ip("-n", ROUTER, "addr", "add", f"{ROUTER_V4}/{LAN_V4_PREFIXLEN}", "dev", "lan")
        ip("-n", ROUTER, "addr", "add", f"{ROUTER_V6}/64", "dev", "lan", "nodad")
        ip("-n", ROUTER, "link", "set", "lan", "up")
        for host in self.hosts:
            ip(
                "link",
                "add",
                "eth0",
                "netns",
                host.name,
                "type",
                "veth",
                "peer",
                "name",
                host.name,
                "netns",
                ROUTER,
            )
            ip("-n", ROUTER, "link", "set", host.name, "master", "lan", "up")
            ip("-n", host.name, "addr", "add", f"{host.v4}/{LAN_V4_PREFIXLEN}", "dev", "eth0")
            ip("-n", host.name, "addr", "add", f"{host.v6}/64", "dev", "eth0", "nodad")
            ip("-n", host.name, "link", "set", "eth0", "up")
            ip("-n", host.name, "route", "add", "default", "via", ROUTER_V4)
            ip("-n", host.name, "-6", "route", "add", "default", "via", ROUTER_V6)
            ip("-n", host.name, "addr", "add", VIP_V4, "dev", "lo")
            ip("-n", host.name, "addr", "add", VIP_V6, "dev", "lo")
        ip(
            "link",
            "add",
            "eth0",
            "netns",
            CLIENT,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT,
            "netns",
            ROUTER,
        )
        ip("-n", ROUTER, "addr", "add", f"{ROUTER_CLIENT_V4}/24", "dev", CLIENT)
        ip("-n", ROUTER, "addr", "add", f"{ROUTER_CLIENT_V6}/64", "dev", CLIENT, "nodad")
        ip("-n", ROUTER, "link", "set", CLIENT, "up")
        ip("-n", CLIENT, "addr", "add", f"{CLIENT_V4}/24", "dev", "eth0")
        ip("-n", CLIENT, "addr", "add", f"{CLIENT_V6}/64", "dev", "eth0", "nodad")
        ip("-n", CLIENT, "link", "set", "eth0", "up")
        ip("-n", CLIENT, "route", "add", "default", "via", ROUTER_CLIENT_V4)
        ip("-n", CLIENT, "-6", "route", "add", "default", "via", ROUTER_CLIENT_V6)

    # ---------------------------------------------------------------- the router
    def _start_router(self) -> None:
        d = self.dir(ROUTER)
        # the very files deploy/lab/compose.yaml mounts: no templating
        for daemon in ("zebra", "bgpd"):
            shutil.copy(deploy_dir() / "frr" / f"{daemon}.conf", d / f"{daemon}.conf")
        # FRR drops to user frr: its folder must belong to it
        shutil.chown(d, "frr", "frr")
        for path in d.iterdir():
            shutil.chown(path, "frr", "frr")
        self.start_frr()

    def _frr_argv(self, daemon: str) -> list[str]:
        d = self.dir(ROUTER)
        return [
            str(FRR_BIN / daemon),
            "-f",
            str(d / f"{daemon}.conf"),
            "-i",
            str(d / f"{daemon}.pid"),
            "-z",
            str(d / "zserv.api"),
            "--vty_socket",
            str(d),
            "-P",
            "0",
            "--log",
            f"file:{d / daemon}.log",
            "--log-level",
            "informational",
        ]

    def start_frr(self) -> None:
        d = self.dir(ROUTER)
        self.start_process(ROUTER, self._frr_argv("zebra"), d / "zebra.out")
        _wait_until(lambda: (d / "zserv.api").exists(), 10, "zebra did not start")
        self.start_process(ROUTER, self._frr_argv("bgpd"), d / "bgpd.out")
        _wait_until(lambda: (d / "bgpd.vty").exists(), 10, "bgpd did not start")

    def stop_frr(self) -> None:
        for daemon in ("bgpd", "zebra"):
            pid_file = self.dir(ROUTER) / f"{daemon}.pid"
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
                pid = int(pid_file.read_text())
                os.kill(pid, signal.SIGTERM)
                _wait_until(functools.partial(_gone, pid), 10, f"{daemon} did not stop")
            (self.dir(ROUTER) / f"{daemon}.vty").unlink(missing_ok=True)
        (self.dir(ROUTER) / "zserv.api").unlink(missing_ok=True)

    def vtysh(self, command: str) -> str:
        result = subprocess.run(
            ["vtysh", "--vty_socket", str(self.vty), "-c", command],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        if result.returncode != 0:
            raise LabError(f"vtysh {command!r}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def vtysh_json(self, command: str) -> Any:
        return json.loads(self.vtysh(command) or "{}")

    # ---------------------------------------------------------------- LB hosts
    def plugin_config(self, host: LbHost) -> dict[str, Any]:
        d = self.dir(host.name)
        config: dict[str, Any] = {
            "bgp": {
                "local_as": host.asn,
                "router_id": host.v4,
                "neighbors": [
                    {"address": ROUTER_V4, "peer_as": ROUTER_AS, "hold_time": 3},
                    {
                        "address": ROUTER_V6,
                        "peer_as": ROUTER_AS,
                        "hold_time": 3,
                        "local_address": host.v6,
                    },
                ],
            },
            "checks": {
                "web": {
                    "http": {"url": "http://127.0.0.1/health", "expect_body": "ok"},
                    "interval": "1s",
                    "fast_interval": "100ms",
                    "timeout": "250ms",
                },
            },
            "vips": [
                {"prefix": VIP_V4, "checks": ["web", "lb"]},
                {"prefix": VIP_V6, "checks": ["web", "lb"]},
            ],
            "drain": {"file": str(d / "drain"), "gshut_period": "2s"},
            "api": {"listen": "127.0.0.1:9180"},
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
                "fast_interval": "100ms",
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
        self.start_service(host.name)
        if host.kind == "haproxy":
            self.start_backends(host.name)
        (d / "announcer.yaml").write_text(yaml.safe_dump(self.plugin_config(host), sort_keys=False))
        if self._exabgp_config is not None:
            (d / "exabgp.conf").write_text(self._exabgp_config(host, d))
        else:
            rendered = subprocess.run(
                [str(BIN / "announcer"), "exabgp-config", "-c", str(d / "announcer.yaml")],
                capture_output=True,
                text=True,
                check=False,
            )
            if rendered.returncode != 0:
                raise LabError(f"{host.name}: exabgp-config failed: {rendered.stderr}")
            (d / "exabgp.conf").write_text(rendered.stdout)
        self.start_exabgp(host.name)

    def start_service(self, name: str) -> None:
        """nginx (with its health endpoint) or HAProxy, the LB itself."""
        host, d = self.host(name), self.dir(name)
        if host.kind == "nginx":
            argv = ["nginx", "-c", str(d / "nginx.conf"), "-e", str(d / "nginx-error.log")]
            self.start_process(name, argv, d / "nginx.out")
        else:
            argv = ["haproxy", "-db", "-f", str(d / "haproxy.cfg")]
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
            except FileNotFoundError:
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
        masters = (
            self.pids(name, "nginx", "-c", str(d / "nginx.conf"))
            if host.kind == "nginx"
            else self.pids(name, "haproxy", str(d / "haproxy.cfg"))
        )
        for pid in masters:
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
        """Run the announcer CLI inside a host (its API listens on that host's loopback)."""
        return netns_exec(
            name, str(BIN / "announcer"), *args, "--api", "http://127.0.0.1:9180", check=check
        )

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

    def updates_received(self, name: str, ipv6: bool = False) -> int:
        """BGP UPDATE messages r1 has received on a host's session."""
        address = self.host(name).v6 if ipv6 else self.host(name).v4
        neighbor = self.vtysh_json(f"show bgp neighbors {address} json")[address]
        return int(neighbor["messageStats"]["updatesRecv"])

    def bgp_paths(self, prefix: str = VIP_V4) -> dict[str, dict[str, Any]]:
        """r1's BGP paths for a prefix, by next hop."""
        family = "ipv6" if ":" in prefix else "ipv4"
        data = self.vtysh_json(f"show bgp {family} unicast {prefix} json")
        return {p["nexthops"][0]["ip"]: p for p in data.get("paths", [])}

    # ---------------------------------------------------------------- what the router sees
    def fib(self, prefix: str = VIP_V4) -> dict[str, int]:
        """Next hops (gateway -> weight) of the router's kernel route for `prefix`."""
        family = "-6" if ":" in prefix else "-4"
        routes = ip_json("-n", ROUTER, family, "route", "show", prefix.split("/")[0])
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

    def fib_count(self, within: str) -> int:
        """How many BGP routes the router's kernel holds inside the prefix `within`."""
        import ipaddress

        network = ipaddress.ip_network(within)
        routes = ip_json(
            "-n", ROUTER, "-4" if network.version == 4 else "-6", "route", "show", "proto", "bgp"
        )
        count = 0
        for route in routes:
            dst = ipaddress.ip_network(route["dst"], strict=False)
            if dst.version == network.version and dst.subnet_of(network):  # type: ignore[arg-type]
                count += 1
        return count

    def host_addresses(self, names: list[str], prefix: str = VIP_V4) -> set[str]:
        return {self.host(n).v6 if ":" in prefix else self.host(n).v4 for n in names}

    def wait_fib(self, names: list[str], prefix: str = VIP_V4, timeout: float = 30.0) -> float:
        """Wait until the FIB's next hops are exactly these hosts; return the seconds waited."""
        want = self.host_addresses(names, prefix)
        started = time.monotonic()
        _wait_until(
            lambda: set(self.fib(prefix)) == want,
            timeout,
            lambda: f"FIB for {prefix} is {sorted(self.fib(prefix))}, want {sorted(want)}",
            poll_s=0.01,
        )
        return time.monotonic() - started

    def sessions_up(self) -> int:
        summary = self.vtysh_json("show bgp summary json")
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
    ) -> list[dict[str, Any]]:
        out = netns_exec(
            CLIENT,
            *_client_argv(url, count, interval_s, timeout_s),
            timeout=count * (interval_s + timeout_s) + 30,
        )
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def start_client(
        self, url: str, count: int, interval_s: float, log: Path
    ) -> subprocess.Popen[bytes]:
        argv = _client_argv(url, count, interval_s, 1.0)
        return self.start_process(CLIENT, argv, log)


@contextlib.contextmanager
def running_lab(lab: Lab) -> Iterator[Lab]:
    lab.up()
    try:
        yield lab
    finally:
        lab.down()


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


def _gone(pid: int) -> bool:
    return not alive(pid)


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
