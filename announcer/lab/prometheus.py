"""The lab's Prometheus: Debian's `prometheus` in its own namespace (`prom`), on the switch,
scraping every LB host's `/metrics` each second with the rules of deploy/prometheus/alerts.yml.

The rules are loaded as they are written, with one change: every `for:` is divided by
`FOR_SCALE` (2m becomes 4s), so that an alert goes pending, fires and resolves within a
lab test instead of minutes. The expressions are untouched.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from .netns import LabError
from .topology import LbHost
from .workspace import Workspace

__all__ = [
    "FOR_SCALE",
    "PROMETHEUS",
    "PROMETHEUS_V4",
    "ROOT_PORT",
    "ROOT_PORT_V4",
    "Prometheus",
    "lab_rules",
]

PROMETHEUS = "prom"
PROMETHEUS_V4 = "198.51.100.60"
PROMETHEUS_PORT = 9090
ROOT_PORT = "anc-lab0"  # this machine's end of the cable to the lab's switch
ROOT_PORT_V4 = "198.51.100.62"
FOR_SCALE = 30
SCRAPE_S = 1
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _rules_source() -> Path:
    return Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"


def _scaled(duration: str) -> str:
    match = _DURATION.match(duration)
    if match is None:
        raise LabError(f"alerts.yml: cannot read the duration {duration!r}")
    seconds = int(match[1]) * _SECONDS[match[2]] / FOR_SCALE
    return f"{max(1, round(seconds))}s"


def lab_rules() -> dict[str, Any]:
    """deploy/prometheus/alerts.yml with every `for:` divided by FOR_SCALE."""
    rules: dict[str, Any] = yaml.safe_load(_rules_source().read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = _scaled(str(rule["for"]))
    return rules


class Prometheus:
    """The lab's Prometheus, and what it says (targets, alerts)."""

    def __init__(self, space: Workspace, hosts: list[LbHost]) -> None:
        self._space = space
        self._hosts = hosts

    @property
    def url(self) -> str:
        return f"http://{PROMETHEUS_V4}:{PROMETHEUS_PORT}"

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise LabError("prometheus not found: run scripts/setup.sh")
        d = self._space.dir(PROMETHEUS)
        (d / "alerts.yml").write_text(yaml.safe_dump(lab_rules(), sort_keys=False))
        config = {
            "global": {
                "scrape_interval": f"{SCRAPE_S}s",
                "scrape_timeout": "900ms",
                "evaluation_interval": f"{SCRAPE_S}s",
            },
            "rule_files": [str(d / "alerts.yml")],
            "scrape_configs": [
                {
                    "job_name": "announcer",
                    "static_configs": [
                        {"targets": [f"{h.v4}:9180"], "labels": {"instance": h.name}}
                        for h in self._hosts
                    ],
                }
            ],
        }
        (d / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        argv = [
            binary,
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address={PROMETHEUS_V4}:{PROMETHEUS_PORT}",
            "--storage.tsdb.retention.time=1d",
        ]
        self._space.start_process(PROMETHEUS, argv, d / "prometheus.log")
        deadline = time.monotonic() + 30
        while not self._ready():
            if time.monotonic() > deadline:
                raise LabError(f"Prometheus did not start: see {d / 'prometheus.log'}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise LabError(f"Prometheus {path}: {body}")
        return body["data"]

    def alerts(self) -> list[dict[str, Any]]:
        """Every pending or firing alert: labels (alertname, instance, vip...) and state."""
        return list(self.api("alerts")["alerts"])

    def alert_states(self, name: str, **labels: str) -> set[str]:
        """The states (pending, firing) of alert `name` whose labels include these."""
        return {
            a["state"]
            for a in self.alerts()
            if a["labels"].get("alertname") == name
            and all(a["labels"].get(k) == v for k, v in labels.items())
        }

    def targets_up(self) -> dict[str, bool]:
        targets = self.api("targets")["activeTargets"]
        return {t["labels"]["instance"]: t["health"] == "up" for t in targets}
