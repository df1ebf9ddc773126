"""The clients behind the routers: requests to the VIP (`announcer.lab.traffic`, run inside a
client namespace), one JSON line per request."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .netns import netns_exec
from .topology import CLIENT
from .workspace import Workspace

__all__ = ["Clients"]


class Clients:
    def __init__(self, space: Workspace) -> None:
        self._space = space

    def requests(
        self,
        count: int,
        url: str = "http://192.0.2.10/",
        interval_s: float = 0.0,
        timeout_s: float = 1.0,
        client: str = CLIENT,
    ) -> list[dict[str, Any]]:
        """Send them now; every request's outcome."""
        out = netns_exec(
            client,
            *_client_argv(url, count, interval_s, timeout_s),
            timeout=count * (interval_s + timeout_s) + 30,
        )
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    def start(
        self, url: str, count: int, interval_s: float, log: Path, client: str = CLIENT
    ) -> subprocess.Popen[bytes]:
        """Send them in the background, each outcome a line of `log`."""
        argv = _client_argv(url, count, interval_s, 1.0)
        return self._space.start_process(client, argv, log)


def _client_argv(url: str, count: int, interval_s: float, timeout_s: float) -> list[str]:
    return [
        *(sys.executable, "-m", "announcer.lab.traffic", "--url", url),
        *("--count", str(count), "--interval", str(interval_s), "--timeout", str(timeout_s)),
    ]
