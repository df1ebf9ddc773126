"""The announcers under test, each a way to set up a lab host: this plugin, and ExaBGP's
bundled healthcheck at its defaults and tuned to interval 1 s, rise 3, fall 3."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from announcer.lab.lab import Lab
from announcer.lab.topology import LbHost

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class System:
    name: str
    label: str
    # for ExaBGP's healthcheck: its options; None means this plugin
    healthcheck: tuple[str, ...] | None = None
    plugin: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ours(self) -> bool:
        return self.healthcheck is None


# dampening off: the failover rounds fail the same host every few seconds on purpose, which
# dampening would (rightly) suppress; everything else is at its defaults
ANNOUNCER = System(
    "announcer",
    "announcer (defaults: interval 1s, fast 50ms, confirm 20ms, timeout 500ms, rise/fall 3)",
    plugin={"dampening": {"enabled": False}},
)
HEALTHCHECK_DEFAULT = System(
    "healthcheck-default",
    "ExaBGP healthcheck, defaults (interval 5s, fast 1s, rise/fall 3)",
    healthcheck=(),
)
HEALTHCHECK_TUNED = System(
    "healthcheck-tuned",
    "ExaBGP healthcheck, tuned (interval 1s, rise/fall 3, timeout 1s)",
    healthcheck=(
        "--interval",
        "1",
        "--fast-interval",
        "1",
        "--rise",
        "3",
        "--fall",
        "3",
        "--timeout",
        "1",
    ),
)
SYSTEMS = (ANNOUNCER, HEALTHCHECK_TUNED, HEALTHCHECK_DEFAULT)


def healthcheck_exabgp_config(
    system: System, vips: list[str], urls: list[str], workdir: Path
) -> str:
    """An exabgp.conf with one bundled-healthcheck process per VIP (its only mode)."""
    assert system.healthcheck is not None
    lines = []
    names = []
    for index, (vip, url) in enumerate(zip(vips, urls, strict=True)):
        name = f"hc{index}"
        names.append(name)
        script = workdir / f"{name}.sh"
        argv = [
            str(BIN / "exabgp"),
            "healthcheck",
            "--no-syslog",
            "--no-ip-setup",
            "--withdraw-on-down",
            "--ip",
            vip,
            "--disable",
            str(workdir / "drain"),
            "--cmd",
            f"curl -sf -o /dev/null --max-time 1 {url}",
            *system.healthcheck,
        ]
        script.write_text("#!/bin/sh\nexec " + shlex.join(argv) + "\n")
        script.chmod(0o755)
        lines += [f"process {name} {{", f"    run {script};", "    encoder text;", "}"]
    return "\n".join(lines) + "\n"


def configure_lab_host(
    lab: Lab, system: System, host: LbHost, config: dict[str, Any], vips: list[str] | None = None
) -> None:
    """Plugin-config hook for Lab: this plugin with `system.plugin` settings (and `vips`), its
    checks at the product's default timings (the lab's own are shorter for its tests)."""
    config.update(system.plugin)
    for check in config["checks"].values():
        for timing in ("fast_interval", "confirm_interval", "timeout", "rise", "fall"):
            check.pop(timing, None)
    if vips:
        web = config["checks"]["web"]
        config["checks"] = {
            f"c{i}": {**web, "http": {"url": f"http://127.0.0.1/health?v={i}"}}
            for i in range(len(vips))
        }
        config["vips"] = [{"prefix": vip, "checks": [f"c{i}"]} for i, vip in enumerate(vips)]
        # the scale VIPs are not on the host's lo (the healthcheck it is compared with does not
        # look either); the address guard is tested in tests/lab/test_everyday_operations.py
        config["addresses"] = {"mode": "ignore"}
        # one IPv4 session, to r1 (the lab's own, with its password): scale is read on r1
        config["bgp"]["neighbors"] = config["bgp"]["neighbors"][:1]
        # CPU is measured with the product's defaults, not the lab's quick BFD status polls
        config.get("bfdd", {}).pop("poll_interval", None)
