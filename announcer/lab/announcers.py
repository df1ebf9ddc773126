"""The announcing side of each LB host: the plugin's configuration, ExaBGP (which runs the
plugin), the host's bfdd, and the plugin's CLI inside the host."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .netns import LabError, alive, ip_json, netns_exec
from .routers import frr_argv
from .topology import ROUTER_AS, ROUTERS, VIP_V4, VIP_V6, LbHost, slot_address
from .workspace import BIN, Workspace, render_with_announcer, stop_daemon, wait_until

__all__ = ["Announcers"]

PluginOverrides = Callable[[LbHost, dict[str, Any]], None]


class Announcers:
    def __init__(
        self,
        space: Workspace,
        bfd: bool,
        bfd_gate: bool,
        plugin_overrides: PluginOverrides | None,
        exabgp_config: Callable[[LbHost, Path], str] | None,
        packaged: Mapping[str, Path] | None = None,
        slots: Mapping[str, list[tuple[int, int]]] | None = None,
        exabgp_env: Mapping[str, str] | None = None,
    ) -> None:
        self._space = space
        # ExaBGP settings beyond the lab's own (a benchmark comparing them)
        self._exabgp_env = dict(exabgp_env or {})
        # stable next hops: per host, the slots it backs (slot number, priority); keepalived
        # runs beside ExaBGP and moves them
        self._slots = dict(slots or {})
        self._bfd = bfd
        self._bfd_gate = bfd_gate
        self._plugin_overrides = plugin_overrides
        # another announcer inside ExaBGP (the benchmark's bundled healthcheck): its exabgp.conf
        self._exabgp_config = exabgp_config
        # hosts that run the Debian package's files (`dpkg-deb -x` of `make deb` into a
        # folder): ExaBGP and the plugin from its environment, not the checkout's
        self._packaged = dict(packaged or {})

    def python(self, name: str) -> str | None:
        """The packaged environment's interpreter for this host (None: the checkout's)."""
        root = self._packaged.get(name)
        return None if root is None else str(root / "opt" / "announcer" / "bin" / "python")

    def bfdd_dir(self, host: str) -> Path:
        return self._space.dir(host) / "bfdd"

    def config(self, host: LbHost) -> dict[str, Any]:
        """The plugin's configuration on this host."""
        d = self._space.dir(host.name)
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
                if self._bfd:
                    neighbor["bfd"] = {"interval": "100ms", "multiplier": 3, "gate": self._bfd_gate}
                neighbors.append(neighbor)
        check = {"interval": "1s", "timeout": "250ms"}
        config: dict[str, Any] = {
            "bgp": {"local_as": host.asn, "router_id": host.v4, "neighbors": neighbors},
            "checks": {
                "web": {"http": {"url": "http://127.0.0.1/health", "expect_body": "ok"}, **check}
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
            config["checks"]["lb"] = {"nginx": {"url": "http://127.0.0.1/nginx_status"}, **check}
        else:
            config["checks"]["lb"] = {
                "haproxy": {
                    "socket": str(d / "haproxy.sock"),
                    "frontend": "www",
                    "backend": "web",
                    "min_up": 1,
                },
                **check,
            }
        slots = self._slots.get(host.name)
        if slots:
            config["stable_next_hops"] = {
                "interface": "eth0",
                "slots": [
                    {"address": slot_address(number), "vrid": 40 + number, "priority": priority}
                    for number, priority in slots
                ],
                "advert_interval": "100ms",
                "health_file": str(d / "slots"),
                "keepalived_pid_file": str(d / "keepalived.pid"),
            }
        if self._plugin_overrides is not None:
            self._plugin_overrides(host, config)
        return config

    def install(self, host: LbHost) -> None:
        """The plugin's config, exabgp.conf (`announcer exabgp-config`), bfdd's
        (`announcer bfd-config`); then bfdd and ExaBGP."""
        d = self._space.dir(host.name)
        (d / "announcer.yaml").write_text(yaml.safe_dump(self.config(host), sort_keys=False))
        python = self.python(host.name)
        if self._exabgp_config is not None:
            (d / "exabgp.conf").write_text(self._exabgp_config(host, d))
        elif python is not None:
            run = f"{python} -m announcer run -c {d / 'announcer.yaml'}"
            rendered = render_with_announcer(
                "exabgp-config", d / "announcer.yaml", "--plugin-command", run
            )
            (d / "exabgp.conf").write_text(rendered)
        else:
            rendered = render_with_announcer("exabgp-config", d / "announcer.yaml")
            (d / "exabgp.conf").write_text(rendered)
        if self._bfd:
            bfdd = self.bfdd_dir(host.name)
            bfdd.mkdir()
            rendered = render_with_announcer("bfd-config", d / "announcer.yaml")
            (bfdd / "bfdd.conf").write_text(rendered)
            shutil.chown(bfdd, "frr", "frr")
            shutil.chown(bfdd / "bfdd.conf", "frr", "frr")
            self.start_bfdd(host.name)
        if self._slots.get(host.name):
            # started by `start_slots`, once every host's plugin runs
            rendered = render_with_announcer("keepalived-config", d / "announcer.yaml")
            (d / "keepalived.conf").write_text(rendered)
        self.start_exabgp(host.name)

    def start_bfdd(self, name: str) -> None:
        d = self.bfdd_dir(name)
        self._space.start_process(name, frr_argv("bfdd", d), d / "bfdd.out")
        wait_until(lambda: (d / "bfdd.vty").exists(), 10, f"{name}: bfdd did not start")

    def start_keepalived(self, name: str) -> None:
        """keepalived for the host's slots, VRRP only, in the foreground, with its own pid
        files (several on one machine)."""
        d = self._space.dir(name)
        if shutil.which("keepalived") is None:
            raise LabError("keepalived not found: run scripts/setup.sh")
        argv = ["keepalived", "--dont-fork", "--log-console", "--no-syslog", "--vrrp"]
        argv += ["-f", str(d / "keepalived.conf"), "-p", str(d / "keepalived.pid")]
        argv += ["-r", str(d / "keepalived-vrrp.pid")]
        self._space.start_process(name, argv, d / "keepalived.log")
        wait_until(lambda: (d / "keepalived-vrrp.pid").exists(), 10, f"{name}: no keepalived")

    def start_slots(self, names: list[str], timeout: float = 30.0) -> None:
        """keepalived on every host, each slot with its first backer: keepalived gives a slot
        nobody holds to the first backer that may hold it and (nopreempt) never takes it
        back, so hosts that start one after the other would leave the first with every slot
        it backs. The lab starts keepalived with preemption on (the configuration rendered
        from a copy with `preempt: true`), waits until each slot is with its first backer,
        then reloads keepalived (SIGHUP) with the real configuration, as an operator would
        rebalance the slots in a maintenance window."""
        for name in names:
            d = self._space.dir(name)
            config = yaml.safe_load((d / "announcer.yaml").read_text())
            config["stable_next_hops"]["preempt"] = True
            (d / "announcer-preempt.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            rendered = render_with_announcer("keepalived-config", d / "announcer-preempt.yaml")
            (d / "keepalived.conf").write_text(rendered)
            self.start_keepalived(name)
        wait_until(self.slots_placed, timeout, "the slots did not reach their first backers")
        for name in names:
            d = self._space.dir(name)
            rendered = render_with_announcer("keepalived-config", d / "announcer.yaml")
            (d / "keepalived.conf").write_text(rendered)
            pid = int((d / "keepalived.pid").read_text())
            os.kill(pid, signal.SIGHUP)

    def slot_holders(self) -> dict[str, list[str]]:
        """Per slot address, the hosts that have it assigned (one, when all is well)."""
        holders: dict[str, list[str]] = {
            slot_address(n): [] for slots in self._slots.values() for n, _ in slots
        }
        for name in self._slots:
            for entry in ip_json("-n", name, "-4", "addr", "show", "dev", "eth0"):
                for info in entry.get("addr_info", []):
                    if info.get("local") in holders:
                        holders[info["local"]].append(name)
        return holders

    def slots_placed(self) -> bool:
        """Every slot is held by its first backer alone."""
        holders = self.slot_holders()
        return all(
            holders[slot_address(slots[0][0])] == [name] for name, slots in self._slots.items()
        )

    def keepalived_pids(self, name: str) -> list[int]:
        return self._space.pids(name, "keepalived", str(self._space.dir(name) / "keepalived.conf"))

    def stop_keepalived(self, name: str, signum: int = signal.SIGKILL) -> None:
        """SIGKILL: as a crash (its addresses stay); SIGTERM: it removes them."""
        d = self._space.dir(name)
        pids = self.keepalived_pids(name)
        for pid in pids:
            os.kill(pid, signum)
        wait_until(lambda: not any(alive(p) for p in pids), 10, f"{name}: keepalived stays")
        if signum == signal.SIGKILL:
            for pid_file in ("keepalived.pid", "keepalived-vrrp.pid"):
                (d / pid_file).unlink(missing_ok=True)

    def stop_bfdd(self, name: str, signum: int = signal.SIGKILL) -> None:
        stop_daemon(self.bfdd_dir(name), "bfdd", signum)

    def start_exabgp(self, name: str) -> None:
        d = self._space.dir(name)
        env = {
            "exabgp.api.cli": "false",
            "exabgp.api.ack": "true",
            "exabgp.daemon.user": getpass.getuser(),
            "exabgp.daemon.daemonize": "false",
            "exabgp.log.destination": "stdout",
            "exabgp.log.level": "INFO",
            # the lab's tests may make a plugin task fail on purpose (SIGUSR2)
            "ANNOUNCER_FAULT_HOOK": "1",
            **self._exabgp_env,
        }
        python = self.python(name)
        exabgp = [str(BIN / "exabgp")] if python is None else [python, "-m", "exabgp"]
        argv = [*exabgp, "server", str(d / "exabgp.conf")]
        self._space.start_process(name, argv, d / "exabgp.log", env)

    def exabgp_pid(self, name: str) -> int | None:
        pids = self._space.pids(name, "exabgp", "server")
        return pids[0] if pids else None

    def stop_exabgp(self, name: str, signum: int = signal.SIGTERM) -> None:
        pid = self.exabgp_pid(name)
        if pid is not None:
            os.kill(pid, signum)
            wait_until(lambda: not alive(pid), 10, f"{name}: ExaBGP did not stop")

    def plugin_pids(self, name: str) -> list[int]:
        return self._space.pids(name, "announcer", "run", "-c")

    def drain_file(self, name: str) -> Path:
        return self._space.dir(name) / "drain"

    def cli(self, name: str, *args: str, check: bool = True) -> str:
        """Run the announcer CLI inside a host, with the host's API token."""
        return netns_exec(
            name,
            str(BIN / "announcer"),
            *args,
            *("--api", "http://127.0.0.1:9180"),
            *("--token-file", str(self._space.dir(name) / "api-token")),
            check=check,
        )
