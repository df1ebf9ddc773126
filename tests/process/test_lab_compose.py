"""deploy/lab/compose.yaml mirrors the namespace lab (it cannot run here: no container engine)."""

from pathlib import Path

import yaml

from announcer.lab.topology import ROUTERS, lb_hosts

LAB = Path(__file__).resolve().parents[2] / "deploy" / "lab"


def test_compose_has_the_lab_hosts_and_addresses():
    compose = yaml.safe_load((LAB / "compose.yaml").read_text())
    services = compose["services"]
    for router, network in zip(ROUTERS, ("clients", "clients2"), strict=True):
        assert services[router.name]["networks"]["lan"] == {
            "ipv4_address": router.v4,
            "ipv6_address": router.v6,
        }
        assert services[router.name]["networks"][network] == {
            "ipv4_address": router.client_gw_v4,
            "ipv6_address": router.client_gw_v6,
        }
        assert services[router.client]["networks"][network] == {
            "ipv4_address": router.client_v4,
            "ipv6_address": router.client_v6,
        }
    for host in lb_hosts(3):
        service = services[host.name]
        assert service["command"] == [host.name]
        assert service["networks"]["lan"] == {"ipv4_address": host.v4, "ipv6_address": host.v6}


def test_compose_mounts_the_same_frr_configs_the_namespace_lab_uses():
    compose = yaml.safe_load((LAB / "compose.yaml").read_text())
    for router in ROUTERS:
        volumes = compose["services"][router.name]["volumes"]
        for daemon in ("zebra", "bgpd", "bfdd"):
            path = f"./frr/{router.name}/{daemon}.conf"
            assert f"{path}:/etc/frr/{daemon}.conf:ro" in volumes
            assert "${" not in (LAB / path).read_text()
