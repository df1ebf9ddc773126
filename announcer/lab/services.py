"""The load balancers on the hosts (nginx, or HAProxy in front of nginx backends): start,
stop, reload and upgrade them as their packages do, and make their health fail."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket

from .netns import netns_exec
from .topology import LbHost, host_named
from .workspace import Workspace, gone, parent_of, wait_until

__all__ = ["Services"]


class Services:
    def __init__(self, space: Workspace, hosts: list[LbHost]) -> None:
        self._space = space
        self._hosts = hosts

    def start(self, name: str) -> None:
        """nginx (with its health endpoint) or HAProxy, the LB itself."""
        host, d = host_named(self._hosts, name), self._space.dir(name)
        if host.kind == "nginx":
            # by its full path: the binary upgrade re-executes argv[0] without a PATH search
            nginx = shutil.which("nginx") or "nginx"
            argv = [nginx, "-c", str(d / "nginx.conf"), "-e", str(d / "nginx-error.log")]
            self._space.start_process(name, argv, d / "nginx.out")
        else:
            # master-worker, as packaged HAProxy runs: a reload (SIGUSR2 to the master) starts
            # new workers that take the listening sockets over from the old ones; the pid file
            # holds the master's pid (it keeps it across reloads: it re-executes itself)
            pidfile = str(d / "haproxy.pid")
            argv = ["haproxy", "-W", "-db", "-f", str(d / "haproxy.cfg"), "-p", pidfile]
            self._space.start_process(name, argv, d / "haproxy.out")
        wait_until(lambda: self._listening(name, 80), 10, f"{name}: LB did not start")

    def start_backends(self, name: str) -> None:
        d = self._space.dir(name)
        argv = ["nginx", "-c", str(d / "backends.conf"), "-e", str(d / "backends-error.log")]
        self._space.start_process(name, argv, d / "backends.out")
        wait_until(lambda: self._listening(name, 8082), 10, f"{name}: no backends")

    def _listening(self, namespace: str, port: int) -> bool:
        out = netns_exec(namespace, "ss", "-Hltn", check=False)
        return any(
            line.split()[3].endswith(f":{port}")
            for line in out.splitlines()
            if len(line.split()) > 3
        )

    def pids(self, name: str) -> list[int]:
        host, d = host_named(self._hosts, name), self._space.dir(name)
        if host.kind == "nginx":
            return self._space.pids(name, "nginx", str(d / "nginx.conf")) + self._space.pids(
                name, "nginx: worker"
            )
        return self._space.pids(name, "haproxy", str(d / "haproxy.cfg"))

    def stop(self, name: str, signum: int = signal.SIGTERM) -> None:
        """Stop nginx/HAProxy on a host, the way a crash (SIGKILL) or a stop (SIGTERM) does."""
        host, d = host_named(self._hosts, name), self._space.dir(name)
        # the master: it stops its workers (HAProxy's master-worker, nginx's master)
        masters = (
            self._space.pids(name, "nginx", "-c", str(d / "nginx.conf"))
            if host.kind == "nginx"
            else [self.master_pid(name)]
        )
        for pid in masters:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signum) if signum == signal.SIGKILL else os.kill(pid, signum)
        wait_until(lambda: not self._listening(name, 80), 10, f"{name}: still up")

    def stop_backends(self, name: str) -> None:
        conf = str(self._space.dir(name) / "backends.conf")
        for pid in self._space.pids(name, "nginx", "-c", conf):
            os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not self._listening(name, 8082), 10, "backends still up")

    def set_health_failing(self, name: str, failing: bool) -> None:
        flag = self._space.dir(name) / "health-fail"
        if failing:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def freeze(self, name: str, frozen: bool) -> None:
        """SIGSTOP the LB: it still accepts TCP connections (the kernel does) but never answers."""
        for pid in self.pids(name):
            os.kill(pid, signal.SIGSTOP if frozen else signal.SIGCONT)

    def master_pid(self, name: str) -> int:
        # from the pid file: telling the master from the process tree races with old workers
        # that exit while it is read (a reload under traffic looked like three masters). A
        # reloading HAProxy master rewrites the file (empty for a moment): read it again.
        pidfile = self._space.dir(name) / (
            "nginx.pid" if host_named(self._hosts, name).kind == "nginx" else "haproxy.pid"
        )
        pid: list[int] = []

        def read() -> bool:
            with contextlib.suppress(OSError, ValueError):
                pid.append(int(pidfile.read_text()))
            return bool(pid)

        wait_until(read, 5, f"{name}: no master pid in {pidfile}", poll_s=0.01)
        return pid[0]

    def workers(self, name: str, master: int | None = None) -> set[int]:
        master = self.master_pid(name) if master is None else master
        return {p for p in self.pids(name) if parent_of(p) == master}

    def reload(self, name: str, timeout: float = 10.0) -> None:
        """`nginx -s reload` (SIGHUP to the master) or a HAProxy master-worker reload (SIGUSR2:
        the master re-executes itself, new workers start, the old ones get -sf); returns once
        new workers run. Old workers finish their open connections first (HAProxy's, an idle
        one, until `timeout client`), as they do in production."""
        # a reload keeps the master's pid (HAProxy's re-executes itself)
        master = self.master_pid(name)
        before = self.workers(name, master)
        os.kill(
            master,
            signal.SIGHUP if host_named(self._hosts, name).kind == "nginx" else signal.SIGUSR2,
        )
        wait_until(lambda: bool(self.workers(name, master) - before), timeout, "no new workers")

    def upgrade_nginx(self, name: str, timeout: float = 10.0) -> None:
        """nginx's binary upgrade: USR2 starts a new master (the old pid file becomes
        .oldbin) with the same listening sockets, WINCH and QUIT retire the old one."""
        d = self._space.dir(name)
        old = self.master_pid(name)
        os.kill(old, signal.SIGUSR2)

        def new_master() -> bool:
            # nginx renames the pid file to .oldbin before the new master writes its own: a read
            # can fall between the two (seen in CI), which is "not yet", not an error
            try:
                return (d / "nginx.pid").read_text().strip() not in ("", str(old))
            except OSError:
                return False

        wait_until(new_master, timeout, "no new nginx master")
        os.kill(old, signal.SIGWINCH)
        os.kill(old, signal.SIGQUIT)
        wait_until(functools.partial(gone, old), timeout, "the old nginx master stays")

    def haproxy_command(self, name: str, command: str) -> str:
        """A command on the host's HAProxy runtime API (a UNIX socket: reachable from here)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self._space.dir(name) / "haproxy.sock"))
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()
