"""Two real ExaBGP processes on loopback: one runs `announcer run` as its plugin, the other
receives the session and records every UPDATE it gets (what went on the wire)."""

from __future__ import annotations

import getpass
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

VENV_BIN = Path(sys.executable).parent
RECORDER = """\
import sys
with open(sys.argv[1], "a", buffering=1) as out:
    for line in sys.stdin:
        out.write(line)
"""


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "exabgp.api.cli": "false",
            "exabgp.daemon.user": getpass.getuser(),
            "exabgp.log.destination": "stdout",
            "exabgp.log.level": "INFO",
        }
    )
    env.update(extra)
    return env


@dataclass
class ExabgpPair:
    workdir: Path
    port: int
    plugin_config: dict
    ack: bool = True
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def received_path(self) -> Path:
        return self.workdir / "received.jsonl"

    def start(self) -> None:
        (self.workdir / "recorder.py").write_text(RECORDER)
        (self.workdir / "receiver.conf").write_text(f"""
process recorder {{
    run {sys.executable} {self.workdir / "recorder.py"} {self.received_path};
    encoder json;
}}
neighbor 127.0.0.1 {{
    router-id 127.0.0.2;
    local-address 127.0.0.2;
    local-as 65000;
    peer-as 65001;
    hold-time 9;
    passive;
    family {{ ipv4 unicast; }}
    api rec {{ processes [ recorder ]; neighbor-changes; receive {{ parsed; update; }} }}
}}
""")
        config = dict(self.plugin_config)
        config["bgp"] = {
            "local_as": 65001,
            "router_id": "127.0.0.1",
            "neighbors": [{"address": "127.0.0.2", "peer_as": 65000, "port": self.port}],
        }
        plugin_yaml = self.workdir / "plugin.yaml"
        plugin_yaml.write_text(yaml.safe_dump(config))
        rendered = subprocess.run(
            [VENV_BIN / "announcer", "exabgp-config", "-c", plugin_yaml],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (self.workdir / "sender.conf").write_text(rendered)
        receiver_env = _env(**{"exabgp.tcp.bind": "127.0.0.2", "exabgp.tcp.port": str(self.port)})
        self._spawn("receiver", receiver_env)
        time.sleep(0.5)
        self._spawn("sender", _env(**{"exabgp.api.ack": "true" if self.ack else "false"}))

    def _spawn(self, name: str, env: dict[str, str]) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the child
        self.processes.append(
            subprocess.Popen(
                [VENV_BIN / "exabgp", "server", self.workdir / f"{name}.conf"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
        log.close()

    def updates(self) -> list[tuple[str, str]]:
        """(announce|withdraw, prefix) in the order the receiver got them."""
        out: list[tuple[str, str]] = []
        if not self.received_path.exists():
            return out
        for line in self.received_path.read_text().splitlines():
            event = json.loads(line)
            if event.get("type") != "update":
                continue
            update = event["neighbor"]["message"].get("update", {})
            for by_nh in update.get("announce", {}).values():
                for nlris in by_nh.values():
                    out += [("announce", n["nlri"]) for n in nlris]
            for nlris in update.get("withdraw", {}).values():
                out += [("withdraw", n["nlri"]) for n in nlris]
        return out

    def wait_for(self, predicate, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.updates()):
                return
            time.sleep(0.1)
        logs = "\n".join(
            f"--- {p.name}\n" + p.read_text()[-3000:] for p in self.workdir.glob("*.log")
        )
        raise AssertionError(f"timed out; updates: {self.updates()}\n{logs}")

    def plugin_pids(self) -> list[int]:
        found = subprocess.run(
            ["pgrep", "-f", f"run -c {self.workdir / 'plugin.yaml'}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return [int(pid) for pid in found.split()]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pid in self.plugin_pids():
            os.kill(pid, signal.SIGKILL)
