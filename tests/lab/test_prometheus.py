"""A real Prometheus (Debian's) in the lab scrapes every host with deploy/prometheus/alerts.yml
loaded (each `for:` divided by FOR_SCALE): the alerts seen firing and resolving."""

from __future__ import annotations

import time

from announcer.lab.prometheus import FOR_SCALE, SCRAPE_S, lab_rules

from .conftest import ALL

VIP = "192.0.2.10/32"


def _for_s(alert: str) -> float:
    for group in lab_rules()["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                return float(str(rule.get("for", "0s")).removesuffix("s"))
    raise KeyError(alert)


def wait_alert(lab, name: str, state: str | None, timeout: float, **labels: str) -> float:
    """Until alert `name` with these labels is in `state` (None: gone); the seconds waited."""
    started = time.monotonic()
    while True:
        states = lab.prometheus.alert_states(name, **labels)
        if (state is None and not states) or (state is not None and state in states):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{name} {labels}: {states or 'inactive'}, want {state}")
        time.sleep(0.2)


def test_alerts_fire_and_resolve_in_a_running_prometheus(lab_factory):
    lab = lab_factory(prometheus=True)
    lab.fib.wait(ALL)
    lab.frr.wait_bfd()
    # healthy: every host scraped, the rules loaded, nothing pending or firing
    deadline = time.monotonic() + 15
    while not (
        all(lab.prometheus.targets_up().values()) and len(lab.prometheus.targets_up()) == len(ALL)
    ):
        assert time.monotonic() < deadline, lab.prometheus.targets_up()
        time.sleep(0.5)
    rules = lab.prometheus.api("rules")["groups"][0]["rules"]
    assert {r["name"] for r in rules} >= {"AnnouncerVipWithdrawn", "AnnouncerReloadFailed"}
    time.sleep(max(_for_s("AnnouncerVipWithdrawn"), 3 * SCRAPE_S))
    assert lab.prometheus.alerts() == []

    # nginx stops on lb1: its withdrawn-VIP alert fires within `for:` plus two scrapes
    lab.services.stop("lb1")
    lab.fib.wait(["lb2", "lb3"], timeout=5)
    limit = _for_s("AnnouncerVipWithdrawn") + 2 * SCRAPE_S + 2 * SCRAPE_S  # + evaluation
    waited = wait_alert(lab, "AnnouncerVipWithdrawn", "firing", limit, instance="lb1", vip=VIP)
    assert waited >= _for_s("AnnouncerVipWithdrawn") - 2 * SCRAPE_S  # pending first
    assert lab.prometheus.alert_states("AnnouncerVipWithdrawn", instance="lb2") == set()

    # a bad reload on lb2: refused, the running config stays, the reload alert fires
    path = lab.dir("lb2") / "announcer.yaml"
    good = path.read_text()
    path.write_text(good.replace("192.0.2.10/32", "192.0.2.10/33"))
    lab.announcers.cli("lb2", "reload", check=False)
    limit = _for_s("AnnouncerReloadFailed") + 4 * SCRAPE_S
    wait_alert(lab, "AnnouncerReloadFailed", "firing", limit, instance="lb2")

    # everything fixed: both resolve
    lab.services.start("lb1")
    path.write_text(good)
    lab.announcers.cli("lb2", "reload")
    lab.fib.wait(ALL, timeout=10)
    wait_alert(lab, "AnnouncerVipWithdrawn", None, 4 * SCRAPE_S + 2, instance="lb1")
    wait_alert(lab, "AnnouncerReloadFailed", None, 4 * SCRAPE_S + 2, instance="lb2")
    assert FOR_SCALE > 1  # the lab's rules are the deployed ones, with shorter waits
