"""Every validation rule, with the error a user sees (`path: message`)."""

from pathlib import Path

import pytest
import yaml

from announcer.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))

BASE = """
bgp:
  local_as: 65001
  router_id: 198.51.100.2
  neighbors:
    - {address: 198.51.100.1, peer_as: 65000}
checks:
  web:
    http: {url: "http://127.0.0.1/health"}
vips:
  - prefix: 192.0.2.10/32
    checks: [web]
"""


def base(**changes):
    data = yaml.safe_load(BASE)
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value
    return data


def issues(data):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return [str(i) for i in info.value.issues]


def test_base_is_valid():
    config = parse_config(base())
    assert config.checks["web"].interval == 1.0
    assert config.vips[0].required_count() == 1


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"vips__0__prefix": "192.0.2.0/33"}, "vips[0].prefix: 192.0.2.0/33 is not a valid prefix"),
        ({"vips__0__prefix": "192.0.2.1/24"}, "vips[0].prefix: 192.0.2.1/24 is not a valid prefix"),
        ({"vips__0__prefix": "192.0.2.0/24"}, "vips[0].prefix: 192.0.2.0/24 is not a host route"),
        (
            {"vips__0__prefix": "0.0.0.0/0", "vips__0__allow_subnet": True},
            "vips[0].prefix: 0.0.0.0/0 is a default route",
        ),
        (
            {"vips__0__prefix": "::/0", "vips__0__allow_subnet": True},
            "vips[0].prefix: ::/0 is a default route",
        ),
        ({"vips__0__checks": ["nope"]}, "vips[0].checks[0]: no check named 'nope'"),
        ({"vips__0__require": 2}, "vips[0].require: 2 checks required but only 1 listed"),
        ({"vips__0__require": "most"}, "vips[0].require"),
        (
            {"vips__0__communities": ["65001:100\nannounce route 0.0.0.0/0 next-hop self"]},
            "vips[0].communities[0]: '65001:100\\nannounce route 0.0.0.0/0 next-hop self' "
            "is not a community",
        ),
        (
            {"vips__0__communities": ["70000:1"]},
            "vips[0].communities[0]: '70000:1' is not a community",
        ),
        ({"vips__0__large_communities": ["1:2"]}, "vips[0].large_communities[0]"),
        (
            {"vips__0__extended_communities": ["bandwidth:65001:1000"]},
            "vips[0].extended_communities[0]",
        ),
        (
            {"vips__0__extended_communities": ["target:4200000000:70000"]},
            "the local part must be at most 65535",
        ),
        (
            {"vips__0__next_hop": "2001:db8::1"},
            "vips[0].next_hop: 2001:db8::1 is not of the same family",
        ),
        ({"vips__0__next_hop": "not-an-ip"}, "vips[0].next_hop: 'not-an-ip' is not an IP address"),
        (
            {"vips__0__prefix": "2001:db8::10/128"},
            "vips[0].next_hop: 2001:db8::10/128 with next_hop self needs an IPv6 neighbor",
        ),
        ({"vips__0__med": -1}, "vips[0].med"),
        ({"vips__0__colour": "red"}, "vips[0].colour: unknown key"),
        (
            {"checks__web__interval": "1 fortnight"},
            "checks.web.interval: '1 fortnight' is not a duration",
        ),
        ({"checks__web__timeout": "2s"}, "checks.web: timeout (2s) must be shorter than interval"),
        ({"checks__web__tcp": {"port": 80}}, "checks.web: a check needs exactly one of"),
        ({"checks__web__rise": 0}, "checks.web.rise"),
        ({"checks__web__http": {"url": "ftp://x"}}, "checks.web.http.url"),
        (
            {"checks__web__http": {"url": "http://h/", "expect_body_regex": "("}},
            "is not a valid regular expression",
        ),
        (
            {"checks__web__http": {"url": "http://h/", "expect_status": [999]}},
            "999 is not an HTTP status",
        ),
        ({"bgp__local_as": 0}, "bgp.local_as"),
        (
            {"bgp__router_id": "2001:db8::1"},
            "bgp.router_id: '2001:db8::1': the router id is an IPv4 address",
        ),
        ({"bgp__neighbors": []}, "bgp.neighbors"),
        ({"api": {"listen": "0.0.0.0"}}, "api.listen: '0.0.0.0' is not host:port"),
        ({"vips": []}, "vips"),
        (
            {"dampening": {"half_life": "1m", "max_suppress": "30s"}},
            "nothing could ever be suppressed",
        ),
        ({"dampening": {"reuse": 3000}}, "reuse must be below suppress"),
        (
            {"drain": {"connections_below": 5}},
            "connections_below and connections_check go together",
        ),
        (
            {"drain": {"connections_below": 5, "connections_check": "web"}},
            "drain.connections_check: must be a haproxy or nginx check",
        ),
        (
            {"vips__0__weight": {"bandwidth_mbps": 100, "from_check": "other"}},
            "vips[0].weight.from_check: 'other' is not one of this VIP's checks",
        ),
        (
            {"bgp__local_as": 4200000000, "vips__0__weight": {"bandwidth_mbps": 100}},
            "vips[0].weight.asn: link bandwidth carries a 16-bit ASN",
        ),
        ({"vips__0__weight": {"bandwidth_mbps": 0}}, "vips[0].weight.bandwidth_mbps"),
    ],
)
def test_each_rule_names_the_field_and_value(changes, expected):
    found = issues(base(**changes))
    assert any(expected in issue for issue in found), found


def test_every_error_is_reported_at_once():
    found = issues(base(vips__0__prefix="192.0.2.0/33", checks__web__rise=0, bgp__local_as=0))
    assert len(found) == 3


def test_v6_neighbor_needs_a_v6_local_address():
    data = base()
    data["bgp"]["neighbors"].append({"address": "2001:db8:ffff::1", "peer_as": 65000})
    assert any("bgp.neighbors[1].local_address" in i for i in issues(data))


def test_duplicate_vips_and_neighbors():
    data = base()
    data["vips"].append(dict(data["vips"][0]))
    data["bgp"]["neighbors"].append(dict(data["bgp"]["neighbors"][0]))
    found = issues(data)
    assert "vips[1].prefix: 192.0.2.10/32 is also vips[0]" in found
    assert any(i.startswith("bgp.neighbors[1].address") for i in found)


def test_exec_argv_is_a_list_not_a_shell_string():
    assert any(
        "checks.web.exec.argv" in i for i in issues(base(checks__web={"exec": {"argv": "ls -l"}}))
    )


def test_malformed_yaml_says_where(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("checks:\n  web: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "invalid YAML" in str(info.value) and "line" in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_durations():
    config = parse_config(
        base(
            checks__web__interval="2m",
            checks__web__timeout=0.25,
            checks__web__fast_interval="250ms",
        )
    )
    check = config.checks["web"]
    assert (check.interval, check.timeout, check.fast_interval) == (120.0, 0.25, 0.25)


def test_configuration_reference_is_generated_from_the_models():
    from announcer.docgen import BEGIN, END, render_reference

    text = (ROOT / "docs" / "configuration.md").read_text()
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert generated == render_reference().strip(), (
        "docs/configuration.md is stale: run python -m announcer.docgen docs/configuration.md"
    )


def _refused(tmp_path, text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    return [str(issue) for issue in error.value.issues]


# 870 bytes that expand to 9**9 values: a parser without a bound takes the plugin's memory
ALIAS_BOMB = (
    "".join(
        f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else ', '.join(['lol'] * 9)}]\n"
        for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
    )
    + "checks: {}\nvips: *i\n"
)


def test_aliases_that_multiply_or_refer_to_themselves_are_refused(tmp_path):
    (issue,) = _refused(tmp_path, ALIAS_BOMB)
    assert "expands to more than 1,000,000 values" in issue
    (issue,) = _refused(tmp_path, "a: &a [*a]\nchecks: {}\nvips: []\n")
    assert "refers to the node that holds it" in issue
    # an alias used as intended still loads
    shared = BASE.replace("checks:\n", "drain: &d {gshut_period: 1s}\nchecks:\n", 1)
    shared = shared.replace('/health"}', '/health"}\n    interval: 2s\n  other: {tcp: {port: 1}}')
    (tmp_path / "ok.yaml").write_text(shared + "dampening: {enabled: false}\n")
    assert load_config(tmp_path / "ok.yaml").drain.gshut_period == 1.0


def test_an_oversized_file_is_refused_before_it_is_parsed(tmp_path):
    (issue,) = _refused(tmp_path, "#" * (8 * 1024 * 1024 + 10))
    assert "larger than 8 MiB" in issue


def test_a_million_wrong_entries_cost_one_message_each_bounded(tmp_path):
    (issue,) = _refused(tmp_path, "checks: {}\nvips:\n" + "  - x\n" * 60_000)
    assert issue.startswith("vips: List should have at most 50000 items")
    issues = _refused(tmp_path, "checks: {}\nvips:\n" + "  - x\n" * 500)
    assert len(issues) == 101 and issues[-1] == "... and 400 more problems"
    long = "y" * 100_000
    (issue,) = _refused(tmp_path, yaml.safe_dump(base(drain={"file": [long] * 5})))
    assert len(issue) < 300, issue


def test_fleet_thresholds_are_a_count_or_a_percentage_and_a_vip_overrides_the_default():
    from announcer.core import Threshold
    from announcer.specs import spec_from_config

    data = base(fleet={"min_serving": "50%", "drain_min_serving": 2})
    data["vips"][0]["fleet"] = {"drain_min_serving": 1}
    spec = spec_from_config(parse_config(data))
    assert spec.vips[0].fleet.min_serving == Threshold(percent=50.0)
    assert spec.vips[0].fleet.drain_min_serving == Threshold(count=1)
    assert spec.fleet is not None and spec.fleet.host_id == 3325256706  # 198.51.100.2
    assert Threshold(percent=50.0).need(3) == 2 and Threshold(percent=50.0).need(4) == 2
    assert spec_from_config(parse_config(base())).fleet is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "a number of hosts must be at least 1"),
        (True, "a number of hosts (1, 2...) or a percentage"),
        ("0%", "is not a number of hosts (1, 2...) or a percentage (1-100%)"),
        ("150%", "is not a number of hosts (1, 2...) or a percentage (1-100%)"),
        ("half", "is not a number of hosts (1, 2...) or a percentage (1-100%)"),
    ],
)
def test_a_fleet_threshold_that_is_neither_is_refused(value, message):
    found = issues(base(fleet={"min_serving": value}))
    assert any(i.startswith("fleet.min_serving: ") and message in i for i in found), found


def test_a_vip_fleet_setting_needs_the_fleet_section_and_the_fleet_needs_bgp():
    data = base()
    data["vips"][0]["fleet"] = {"min_serving": 1}
    assert "vips[0].fleet: needs the top-level fleet: section" in issues(data)
    data = base(fleet={})
    del data["bgp"]
    assert any(i.startswith("fleet: needs the bgp: section") for i in issues(data))


STABLE = {
    "interface": "eth0",
    "slots": [
        {"address": "198.51.100.41", "vrid": 41, "priority": 200},
        {"address": "198.51.100.43", "vrid": 43, "priority": 100},
    ],
}


def test_stable_next_hops_give_the_ipv4_vips_one_path_per_slot():
    from announcer.specs import spec_from_config

    data = base(stable_next_hops=STABLE)
    data["vips"].append(
        {"prefix": "2001:db8::10/128", "checks": ["web"], "next_hop": "2001:db8::1"}
    )
    spec = spec_from_config(parse_config(data))
    assert spec.vips[0].route.paths == ((41, "198.51.100.41"), (43, "198.51.100.43"))
    assert spec.vips[1].route.paths == ()  # IPv6: its plain next hop
    assert spec.path_ids == {"192.0.2.10/32": (41, 43)}
    stable = parse_config(data).stable_next_hops
    assert stable is not None and stable.advert_interval == 0.1 and not stable.preempt


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["stable_next_hops"]["slots"].append(
                {"address": "198.51.100.44", "vrid": 41, "priority": 100}
            ),
            "stable_next_hops.slots[2].vrid: 41 is also slots[0]",
        ),
        (
            lambda d: d["stable_next_hops"]["slots"].append(
                {"address": "198.51.100.41", "vrid": 44, "priority": 100}
            ),
            "stable_next_hops.slots[2].address: 198.51.100.41 is also slots[0]",
        ),
        (
            lambda d: d["stable_next_hops"]["slots"].append(
                {"address": "2001:db8::41", "vrid": 44, "priority": 100}
            ),
            "stable_next_hops.slots[2].address: IPv4 slots only",
        ),
        (
            lambda d: d["vips"][0].update(next_hop="198.51.100.9"),
            "vips[0].next_hop: with stable_next_hops the IPv4 VIPs' next hops are the slots",
        ),
        (lambda d: d.pop("bgp"), "stable_next_hops: needs the bgp: section"),
        (
            lambda d: d["stable_next_hops"]["slots"][0].update(priority=255),
            "stable_next_hops.slots[0].priority: ",
        ),
        (
            lambda d: d["stable_next_hops"].update(interface="eth0 nopreempt"),
            "stable_next_hops.interface: ",
        ),
        (lambda d: d["stable_next_hops"].update(slots=[]), "stable_next_hops.slots: "),
        (
            lambda d: d["stable_next_hops"].update(interface="lo"),
            "stable_next_hops.interface: keepalived cannot run VRRP on the loopback",
        ),
    ],
)
def test_stable_next_hops_are_checked(change, message):
    import copy

    data = base(stable_next_hops=copy.deepcopy(STABLE))
    change(data)
    found = issues(data)
    assert any(i.startswith(message) for i in found), found


def test_reading_a_file_leaves_the_collector_as_it_found_it(tmp_path):
    import gc
    import threading

    path = tmp_path / "announcer.yaml"
    path.write_text(BASE)
    assert gc.isenabled()
    load_config(path)
    assert gc.isenabled()
    gc.disable()
    try:
        load_config(path)
        assert not gc.isenabled()
    finally:
        gc.enable()
    # loads in several threads at once (the plugin reads off its loop): on again after all
    threads = [threading.Thread(target=load_config, args=(path,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gc.isenabled()
