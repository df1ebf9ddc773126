"""The operations kit agrees with the code: alert rules, dashboard, docs and systemd unit."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from announcer.api.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
METRIC = re.compile(r"\b(announcer_[a-z_]+)")


def family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in METRIC_NAMES:
            return name.removesuffix(suffix)
    return name


def exprs_of_rules() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def exprs_of_dashboard() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "announcer-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_used_exists(source):
    exprs = exprs_of_rules() if source == "alerts" else exprs_of_dashboard()
    used = {family(m) for e in exprs for m in METRIC.findall(e)}
    assert used, "no metric found: the test would prove nothing"
    assert used <= set(METRIC_NAMES), used - set(METRIC_NAMES)


def test_every_metric_is_documented():
    operations = (ROOT / "docs" / "operations.md").read_text()
    missing = [name for name in METRIC_NAMES if f"`{name}" not in operations]
    assert not missing, missing


async def test_metric_names_match_a_real_scrape(
    health_server, plugin_config, unused_tcp_port, tmp_path
):
    """METRIC_NAMES is what /metrics really serves once the plugin has done some work."""
    import asyncio

    from aiohttp import ClientSession

    from announcer.app import Plugin
    from announcer.config import parse_config
    from announcer.core import AddPathNegotiated, Neighbor, RoutesReceived
    from tests.fakes import wait_for_api
    from tests.process.test_plugin_inprocess import MemoryChannel

    config = plugin_config(health_server.url)
    config["vips"][0]["weight"] = {"bandwidth_mbps": 100, "asn": 65001}
    # a second VIP, guarded: not on this machine, so withdrawn and served as 0
    config["vips"].append({"prefix": "192.0.2.11/32", "checks": ["web"], "address": "require"})
    config["bgp"] = {
        "local_as": 65001,
        "router_id": "198.51.100.2",
        "neighbors": [{"address": "198.51.100.1", "peer_as": 65000, "bfd": {}}],
    }
    config["bfdd"] = {"vty_socket": "/nonexistent-bfdd"}  # unreachable: still served, as 0
    config["fleet"] = {"min_serving": 1}
    # stable next hops, keepalived not running here: its metrics are served (as 0)
    config["stable_next_hops"] = {
        "interface": "eth0",
        "slots": [{"address": "198.51.100.41", "vrid": 41, "priority": 200}],
        "health_file": str(tmp_path / "slots"),
        "keepalived_pid_file": str(tmp_path / "keepalived.pid"),
    }
    channel = MemoryChannel()
    plugin = Plugin(parse_config(config), channel)
    task = asyncio.create_task(plugin.run())
    # bfdd is unreachable: the gate holds every route back from the BFD router
    await channel.wait_for("neighbor 198.51.100.1 withdraw")
    # the router sends its paths back: its view is known once its End-of-RIB came
    plugin.owner.post(AddPathNegotiated("198.51.100.1", frozenset({"ipv4 unicast"})))
    plugin.owner.post(Neighbor("198.51.100.1", "up"))
    plugin.owner.post(RoutesReceived("198.51.100.1", end_of_rib="ipv4 unicast"))
    await wait_for_api(config["api"]["listen"])
    await asyncio.sleep(0.3)  # the keepalived watcher has looked once
    async with ClientSession() as http, http.get(f"http://{config['api']['listen']}/metrics") as r:
        text = await r.text()
    plugin.request_stop("test")
    await task
    served = {
        family(line.split("{")[0].split(" ")[0])
        for line in text.splitlines()
        if line.startswith("announcer_")
    }
    assert served == set(METRIC_NAMES), served ^ set(METRIC_NAMES)


PROMTOOL = shutil.which("promtool")


def _required(tool: str | None, name: str) -> None:
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI (scripts/setup.sh installs it)")
        pytest.skip(f"{name} not installed")


@pytest.mark.parametrize(
    "args",
    [
        ["check", "rules", "alerts.yml"],  # the rules are valid PromQL
        ["test", "rules", "alerts.test.yml"],  # and fire as their unit tests say
    ],
    ids=["check", "test"],
)
def test_promtool(args):
    _required(PROMTOOL, "promtool")
    result = subprocess.run(
        [PROMTOOL, *args], cwd=DEPLOY / "prometheus", capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["exabgp-announcer.service", "announcer-bfdd.service"])
def test_systemd_unit_verifies(tmp_path, name):
    analyze = shutil.which("systemd-analyze")
    _required(analyze, "systemd-analyze")
    venv_bin = str(Path(os.sys.executable).parent)
    unit = (DEPLOY / "systemd" / name).read_text()
    (tmp_path / name).write_text(unit.replace("/opt/announcer/bin", venv_bin))
    result = subprocess.run(
        [analyze, "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and not problems, problems


def test_bfdd_unit_and_exabgp_fail_closed_together():
    """bfdd gone -> ExaBGP stopped (its sessions close); bfdd back -> ExaBGP started."""
    bfdd = (DEPLOY / "systemd" / "announcer-bfdd.service").read_text()
    assert "announcer bfd-config -c /etc/announcer/announcer.yaml -o" in bfdd
    assert "Upholds=exabgp-announcer.service" in bfdd
    dropin = (DEPLOY / "systemd" / "exabgp-announcer.service.d" / "bfd.conf").read_text()
    assert "BindsTo=announcer-bfdd.service" in dropin


def test_systemd_unit_checks_the_config_and_drains_on_stop():
    unit = (DEPLOY / "systemd" / "exabgp-announcer.service").read_text()
    assert "WatchdogSec=" in unit and "NotifyAccess=all" in unit
    assert "ExecStartPre=/opt/announcer/bin/announcer check -c" in unit
    assert "announcer drain --wait --no-persist" in unit
    assert "User=exabgp" in unit and "CapabilityBoundingSet=\n" in unit


@pytest.mark.parametrize(
    ("name", "ceiling"), [("exabgp-announcer.service", 3.0), ("announcer-bfdd.service", 4.0)]
)
def test_systemd_units_stay_sandboxed(tmp_path, name, ceiling):
    """`systemd-analyze security` scores the sandbox (0 best, 10 none): it stays under the
    ceiling (before the hardening: 6.2 and 9.6)."""
    analyze = shutil.which("systemd-analyze")
    _required(analyze, "systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=true", str(DEPLOY / "systemd" / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) < ceiling, result.stdout
