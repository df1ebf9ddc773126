"""Thin wrappers over `ip` for the lab: namespaces, links, addresses, processes inside them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from ..core.errors import AnnouncerError

__all__ = [
    "LabError",
    "alive",
    "existing_namespaces",
    "ip",
    "ip_json",
    "kill_namespace_processes",
    "namespace_pids",
    "netns_exec",
    "spawn",
]


class LabError(AnnouncerError):
    pass


def ip(*args: str, check: bool = True) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise LabError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def ip_json(*args: str) -> Any:
    out = ip("-j", *args)
    return json.loads(out) if out.strip() else []


def existing_namespaces() -> set[str]:
    out = ip("netns", "list", check=False)
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def netns_exec(namespace: str, *argv: str, check: bool = True, timeout: float = 30) -> str:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise LabError(f"{namespace}: {' '.join(argv)}: {result.stderr.strip() or result.stdout}")
    return result.stdout


def spawn(
    namespace: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running process inside a namespace, in its own process group."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", namespace, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def namespace_pids(namespace: str) -> list[int]:
    out = ip("netns", "pids", namespace, check=False)
    return [int(pid) for pid in out.split() if pid.isdigit()]


def kill_namespace_processes(namespace: str, grace_s: float = 2.0) -> None:
    """Every process living in the namespace: SIGTERM, then SIGKILL whatever is left."""
    for signum in (signal.SIGTERM, signal.SIGKILL):
        pids = namespace_pids(namespace)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + grace_s
        while pids and time.monotonic() < deadline:
            pids = [p for p in namespace_pids(namespace) if alive(p)]
            time.sleep(0.05)
        if not pids:
            return


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie (reaped here if it is our own child)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        # OSError, not only FileNotFoundError: a process that exits between the open and the
        # read fails the read with ESRCH (ProcessLookupError)
        return False
    if state == "Z":
        # reap our own zombies; others are reaped by their parent or init
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True
