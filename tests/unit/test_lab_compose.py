"""deploy/lab/compose.yaml mirrors the namespace lab (it cannot run here: no container engine)."""

from pathlib import Path

import yaml

from announcer.lab.topology import (
    CLIENT_V4,
    CLIENT_V6,
    ROUTER_CLIENT_V4,
    ROUTER_V4,
    ROUTER_V6,
    lb_hosts,
)

LAB = Path(__file__).resolve().parents[2] / "deploy" / "lab"


def test_compose_has_the_lab_hosts_and_addresses():
    compose = yaml.safe_load((LAB / "compose.yaml").read_text())
    services = compose["services"]
    assert services["r1"]["networks"]["lan"] == {
        "ipv4_address": ROUTER_V4,
        "ipv6_address": ROUTER_V6,
    }
    assert services["r1"]["networks"]["clients"]["ipv4_address"] == ROUTER_CLIENT_V4
    assert services["client"]["networks"]["clients"] == {
        "ipv4_address": CLIENT_V4,
        "ipv6_address": CLIENT_V6,
    }
    for host in lb_hosts(3):
        service = services[host.name]
        assert service["command"] == [host.name]
        assert service["networks"]["lan"] == {"ipv4_address": host.v4, "ipv6_address": host.v6}


def test_compose_mounts_the_same_frr_configs_the_namespace_lab_uses():
    compose = yaml.safe_load((LAB / "compose.yaml").read_text())
    volumes = compose["services"]["r1"]["volumes"]
    for daemon in ("zebra", "bgpd"):
        assert f"./frr/{daemon}.conf:/etc/frr/{daemon}.conf:ro" in volumes
        assert "${" not in (LAB / "frr" / f"{daemon}.conf").read_text()
