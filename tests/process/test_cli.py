"""The command line as a user runs it."""

import subprocess
import sys

import pytest
import yaml


def announcer(*args, check=False):
    return subprocess.run(
        [sys.executable, "-m", "announcer", *args], capture_output=True, text=True, check=check
    )


def test_plan_prints_the_exact_commands(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "bgp": {
                    "local_as": 65001,
                    "router_id": "198.51.100.2",
                    "neighbors": [{"address": "198.51.100.1", "peer_as": 65000}],
                },
                "checks": {"web": {"tcp": {"port": 80}}},
                "vips": [
                    {
                        "prefix": "192.0.2.10/32",
                        "checks": ["web"],
                        "as_path_prepend": 1,
                        "communities": ["65001:7"],
                    }
                ],
            }
        )
    )
    result = announcer("plan", "-c", str(config), check=True)
    assert (
        "healthy:  announce route 192.0.2.10/32 next-hop self med 100 origin igp "
        "as-path [ 65001 65001 ] community [ 65001:7 ]"
    ) in result.stdout
    assert "down:     withdraw route 192.0.2.10/32" in result.stdout


def test_probe_prints_a_table_and_fails_when_a_check_fails(tmp_path, unused_tcp_port):
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "checks": {
                    "closed": {"tcp": {"port": unused_tcp_port}},
                    "fine": {"exec": {"argv": [sys.executable, "-c", "print('all good')"]}},
                },
                "vips": [{"prefix": "192.0.2.10/32", "checks": ["closed", "fine"]}],
            }
        )
    )
    result = announcer("probe", "-c", str(config))
    assert result.returncode == 1
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "FAIL" in lines["closed"] and "connection_refused" in lines["closed"]
    assert " ok " in lines["fine"] and "all good" in lines["fine"]


def test_status_without_a_running_plugin_says_so(unused_tcp_port):
    result = announcer("status", "--api", f"http://127.0.0.1:{unused_tcp_port}")
    assert result.returncode == 1
    assert "cannot reach the announcer API" in result.stderr


def _write(tmp_path, data: dict):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


BGP = {
    "local_as": 65001,
    "router_id": "198.51.100.2",
    "neighbors": [{"address": "198.51.100.1", "peer_as": 65000}],
}


def test_plan_shows_the_draining_route_the_plugin_sends(tmp_path):
    """The same route builder as the running plugin: drain adds 65535:0, weight the bandwidth."""
    config = _write(
        tmp_path,
        {
            "bgp": BGP,
            "checks": {"web": {"tcp": {"port": 80}}},
            "vips": [
                {"prefix": "192.0.2.10/32", "checks": ["web"], "weight": {"bandwidth_mbps": 8}}
            ],
        },
    )
    out = announcer("plan", "-c", config, check=True).stdout
    assert (
        "healthy:  announce route 192.0.2.10/32 next-hop self med 100 origin igp "
        "extended-community [ bandwidth:65001:1000000 ]"
    ) in out
    assert (
        "draining: announce route 192.0.2.10/32 next-hop self med 100 origin igp "
        "community [ 65535:0 ] extended-community [ bandwidth:65001:1000000 ]"
    ) in out


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            {"vips": [{"prefix": "2001:db8::10%x;y}/128", "checks": ["web"]}]},
            "vips[0].prefix: '2001:db8::10%x;y}/128' is not a valid prefix",
        ),
        (
            {"bgp": BGP | {"neighbors": [{"address": "2001:db8::1%a;}", "peer_as": 65000}]}},
            "bgp.neighbors[0].address: '2001:db8::1%a;}' is not an IP address",
        ),
        (
            {"bgp": BGP | {"local_address": "198.51.100.2%lo"}},
            "bgp.local_address: '198.51.100.2%lo' is not an IP address",
        ),
        (
            {"bgp": BGP | {"neighbors": [BGP["neighbors"][0] | {"hold_time": 0}]}},
            "bgp.neighbors[0].hold_time: Input should be greater than or equal to 3",
        ),
        (
            {"api": {"listen": "0.0.0.0:9180"}},
            "api.listen: 0.0.0.0:9180 is reachable from other hosts: set api.token_file",
        ),
    ],
)
def test_check_plan_and_exabgp_config_refuse_what_could_break_out(tmp_path, change, error):
    data = {
        "bgp": BGP,
        "checks": {"web": {"tcp": {"port": 80}}},
        "vips": [{"prefix": "192.0.2.10/32", "checks": ["web"]}],
    } | change
    config = _write(tmp_path, data)
    for command in ("check", "plan", "exabgp-config"):
        result = announcer(command, "-c", config)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert error in result.stderr, (command, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
