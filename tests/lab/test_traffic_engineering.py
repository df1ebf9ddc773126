"""Drain without loss, weighted ECMP, flap dampening and hot reload, seen from the router."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import yaml

from announcer.lab.lab import Lab, LabError
from announcer.lab.netns import ip
from announcer.lab.topology import LbHost

from .conftest import ALL, wait_for


def test_drain_under_traffic_loses_nothing(lab):
    lb2 = lab.host("lb2").v4
    log = lab.workdir / "traffic.jsonl"
    client = lab.clients.start("http://192.0.2.10/", count=120, interval_s=0.05, log=log)
    time.sleep(1.5)
    lab.announcers.cli("lb2", "drain", "--reason", "maintenance")
    # first the host leaves the ECMP set while its route is still there (local-pref 0)...
    wait_for(
        lambda: lb2 not in lab.fib.next_hops() and lb2 in lab.frr.bgp_paths(),
        5,
        "lb2 to leave ECMP",
    )
    assert lab.frr.bgp_paths()[lb2].get("locPrf") == 0
    # ...then, after gshut_period, the route goes
    wait_for(lambda: lb2 not in lab.frr.bgp_paths(), 10, "lb2's route to be withdrawn")
    client.wait(30)
    results = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    failed = [r for r in results if not r["ok"]]
    assert len(results) == 120 and not failed, failed
    assert "lb2" in {r["server"] for r in results}  # it served before the drain
    status = json.loads(lab.announcers.cli("lb2", "status", "--json"))
    assert status["vips"][0]["drain"]["phase"] == "withdrawn"
    lab.announcers.cli("lb2", "undrain")
    lab.fib.wait(ALL)


def _weights(static: dict[str, float], from_check: set[str] = frozenset()):
    def override(host: LbHost, config: dict[str, Any]) -> None:
        for vip in config["vips"]:
            vip["weight"] = {"bandwidth_mbps": static[host.name]}
            if host.name in from_check:
                vip["weight"]["from_check"] = "lb"

    return override


def ratio(lab: Lab, a: str, b: str) -> float:
    fib = lab.fib.next_hops()
    return fib[lab.host(a).v4] / fib[lab.host(b).v4]


def test_static_weights_one_to_three(lab_factory):
    lab = lab_factory(plugin_overrides=_weights({"lb1": 1000, "lb2": 3000, "lb3": 1000}))
    lab.fib.wait(ALL)
    wait_for(lambda: ratio(lab, "lb2", "lb1") == 3, 10, "weights 1:3")
    assert ratio(lab, "lb3", "lb1") == 1


def test_weight_follows_haproxy_capacity(lab_factory):
    lab = lab_factory(
        plugin_overrides=_weights({"lb1": 1000, "lb2": 1000, "lb3": 1000}, from_check={"lb3"})
    )
    lab.fib.wait(ALL)
    wait_for(lambda: ratio(lab, "lb3", "lb1") == 1, 10, "equal weights")
    lab.services.haproxy_command("lb3", "disable server web/s1")  # half of lb3's backends
    wait_for(lambda: ratio(lab, "lb1", "lb3") == 2, 10, "lb3 at half weight")
    lab.services.haproxy_command("lb3", "enable server web/s1")
    wait_for(lambda: ratio(lab, "lb3", "lb1") == 1, 10, "lb3 back to full weight")


FLAP_SECONDS = 20
FLAP_EVERY = 0.2


def _flappy(host: LbHost, config: dict[str, Any]) -> None:
    if host.name == "lb1":
        config["checks"]["web"].update(
            rise=1, fall=1, interval="100ms", fast_interval="100ms", timeout="80ms"
        )
        config["dampening"] = {"half_life": "5s", "max_suppress": "15s"}


def test_a_flapping_host_is_de_preferred_and_never_the_cause_of_an_empty_fib(lab_factory):
    """Dampening takes a flapping host out of the ECMP set (its route comes back with
    GRACEFUL_SHUTDOWN, local-preference 0) but never withdraws a healthy VIP for it."""
    lab = lab_factory(plugin_overrides=_flappy)
    lab.fib.wait(ALL)
    lb1 = lab.host("lb1").v4
    deadline = time.monotonic() + FLAP_SECONDS
    failing = False
    in_fib_late = 0
    while time.monotonic() < deadline:
        failing = not failing
        lab.services.set_health_failing("lb1", failing)
        time.sleep(FLAP_EVERY)
        if deadline - time.monotonic() < FLAP_SECONDS / 2:
            in_fib_late += lb1 in lab.fib.next_hops()
    lab.services.set_health_failing("lb1", False)
    assert in_fib_late == 0  # suppressed: no traffic while the others announce
    status = json.loads(lab.announcers.cli("lb1", "status", "--json"))
    assert status["vips"][0]["reason"] == "suppressed"
    wait_for(lambda: lb1 in lab.frr.bgp_paths(), 5, "lb1's de-preferred route")
    assert lab.frr.bgp_paths()[lb1].get("locPrf") == 0
    assert lb1 not in lab.fib.next_hops()
    lab.fib.wait(ALL, timeout=20)  # released once the penalty decays below reuse


def test_reload_broken_config_changes_nothing(lab):
    config_path = lab.dir("lb1") / "announcer.yaml"
    good = config_path.read_text()
    before = {name: lab.frr.updates_received(name) for name in ALL}
    config_path.write_text(good.replace("192.0.2.10/32", "192.0.2.10/33"))
    with pytest.raises(LabError, match=re.escape("192.0.2.10/33")):
        lab.announcers.cli("lb1", "reload")
    time.sleep(2)
    assert {name: lab.frr.updates_received(name) for name in ALL} == before
    assert set(lab.fib.next_hops()) == lab.fib.addresses(ALL)


def test_reload_adding_a_vip_touches_no_other_route(lab):
    config_path = lab.dir("lb1") / "announcer.yaml"
    config = yaml.safe_load(config_path.read_text())
    before = {(n, v6): lab.frr.updates_received(n, v6) for n in ALL for v6 in (False, True)}
    config["vips"].append({"prefix": "192.0.2.11/32", "checks": ["web", "lb"]})
    config_path.write_text(yaml.safe_dump(config))
    ip("-n", "lb1", "addr", "add", "192.0.2.11/32", "dev", "lo")  # the guard requires it
    lab.announcers.cli("lb1", "reload")
    lab.fib.wait(["lb1"], "192.0.2.11/32")
    time.sleep(1)
    after = {(n, v6): lab.frr.updates_received(n, v6) for n in ALL for v6 in (False, True)}
    changed = {key: after[key] - before[key] for key in before if after[key] != before[key]}
    assert changed == {("lb1", False): 1}, changed
    assert set(lab.fib.next_hops()) == lab.fib.addresses(ALL)
