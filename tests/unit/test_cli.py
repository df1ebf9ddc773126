"""The command line as a user runs it."""

import subprocess
import sys

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
