"""What every part of the lab shares: its folder, its namespaces, and the processes it starts
(recorded in lab.json, so `down` finds them even after the process that started them died),
with the small helpers they all use."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from string import Template

from .netns import LabError, alive, namespace_pids, netns_exec, spawn

__all__ = [
    "BIN",
    "FRR_BIN",
    "Workspace",
    "deploy_dir",
    "gone",
    "parent_of",
    "render_template",
    "render_with_announcer",
    "stop_daemon",
    "sysctl",
    "wait_until",
]

FRR_BIN = Path("/usr/lib/frr")
BIN = Path(sys.executable).parent


def deploy_dir() -> Path:
    """The lab's configs and templates: the checkout's deploy/lab, or where a container image
    put them (ANNOUNCER_LAB_DEPLOY: the LB image runs the installed package, not a checkout)."""
    override = os.environ.get("ANNOUNCER_LAB_DEPLOY")
    found = Path(override) if override else Path(__file__).resolve().parents[2] / "deploy" / "lab"
    if not found.is_dir():
        raise LabError(f"cannot find the lab's configs at {found}: run the lab from a checkout")
    return found


def write_secrets(folder: Path, host: str, bgp_secret: str) -> None:
    """A host's BGP password and API token, as private files: the plugin refuses a secret
    other users can read."""
    for name, text in (("bgp-secret", bgp_secret), ("api-token", f"lab-api-token-{host}")):
        (folder / name).touch(mode=0o600)
        (folder / name).chmod(0o600)
        (folder / name).write_text(text + "\n")


def render_template(template: str, **values: object) -> str:
    return Template((deploy_dir() / template).read_text()).substitute(
        {k: str(v) for k, v in values.items()}
    )


def render_with_announcer(command: str, config: Path, *options: str) -> str:
    """What `announcer exabgp-config` or `announcer bfd-config` renders from a host's config:
    the lab configures its daemons with the product's own commands."""
    rendered = subprocess.run(
        [str(BIN / "announcer"), command, "-c", str(config), *options],
        capture_output=True,
        text=True,
        check=False,
    )
    if rendered.returncode != 0:
        raise LabError(f"{config}: {command} failed: {rendered.stderr}")
    return rendered.stdout


class Workspace:
    """The lab's folder (one subfolder per namespace) and the processes started in it."""

    def __init__(self, workdir: Path, namespaces: list[str]) -> None:
        self.workdir = workdir
        self.namespaces = namespaces
        self.children: list[subprocess.Popen[bytes]] = []

    def dir(self, namespace: str) -> Path:
        return self.workdir / namespace

    def prepare(self) -> None:
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
        self.children.append(process)
        path = self.workdir / "lab.json"
        state = json.loads(path.read_text())
        state["pids"].append(process.pid)
        path.write_text(json.dumps(state))
        return process

    def pids(self, namespace: str, *fragments: str) -> list[int]:
        """The processes of a namespace whose command line holds every fragment."""
        pids = []
        for pid in namespace_pids(namespace):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:  # gone, or exiting while read (ESRCH)
                continue
            if all(f in cmdline for f in fragments) and alive(pid):
                pids.append(pid)
        return pids

    def recorded_namespaces(self) -> list[str]:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return list(json.loads((self.workdir / "lab.json").read_text())["namespaces"])
        return []

    def recorded_pids(self) -> list[int]:
        with contextlib.suppress(OSError, ValueError, KeyError):
            return [int(p) for p in json.loads((self.workdir / "lab.json").read_text())["pids"]]
        return []

    def reap(self) -> None:
        """Kill what `ip netns exec` started and left (none should remain), wait for our
        children."""
        for pid in self.recorded_pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        for child in self.children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(5)
        self.children.clear()


def sysctl(namespace: str, key: str, value: str) -> None:
    netns_exec(namespace, "sysctl", "-qw", f"{key}={value}")


def parent_of(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def gone(pid: int) -> bool:
    return not alive(pid)


def stop_daemon(d: Path, daemon: str, signum: int = signal.SIGTERM) -> None:
    """An FRR daemon, by its pid file in `d`."""
    pid_file = d / f"{daemon}.pid"
    with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
        pid = int(pid_file.read_text())
        os.kill(pid, signum)
        wait_until(functools.partial(gone, pid), 10, f"{daemon} did not stop")
    (d / f"{daemon}.vty").unlink(missing_ok=True)


def wait_until(
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
