"""The faults of a production load-balancer host, each against `announcer run` as a process
with a fake ExaBGP that keeps an adj-rib-out: the assertions are on what ExaBGP would carry.

Each test names the finding of the fail-closed issue it covers.
"""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import sys

import pytest
from aiohttp import ClientSession

from tests.conftest import Switchable
from tests.fakes import fast_http_check, wait_for_api, write_config

VIP, VIP2 = "192.0.2.10/32", "192.0.2.11/32"


async def api(config: dict, method: str, path: str, body: dict | None = None) -> tuple[int, str]:
    await wait_for_api(config["api"]["listen"])
    async with (
        ClientSession() as http,
        http.request(method, f"http://{config['api']['listen']}{path}", json=body) as r,
    ):
        return r.status, await r.text()


async def wait_api(config: dict) -> None:
    await wait_for_api(config["api"]["listen"])


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not served")


def broken_https_check(tmp_path) -> dict:
    """Valid config, but its probe cannot be built: the CA file does not exist."""
    url = "https://127.0.0.1:9/health"
    return fast_http_check(url) | {"http": {"url": url, "ca_file": str(tmp_path / "no-ca.pem")}}


# finding 1
async def test_reload_to_a_check_that_cannot_be_built_is_refused_and_the_old_one_runs_on(
    exabgp, health_server, plugin_config, tmp_path
):
    config = plugin_config(health_server.url)
    fake = exabgp(config)
    await fake.start()
    await fake.wait_rib(lambda rib: VIP in rib)
    broken = copy.deepcopy(config)
    broken["checks"]["web"] = broken_https_check(tmp_path)
    write_config(fake.config_path, broken)
    status, body = await api(config, "POST", "/v1/reload")
    assert status == 400, body
    assert "checks.web: cannot build the probe" in body
    _, metrics = await api(config, "GET", "/metrics")
    assert metric(metrics, "announcer_config_last_reload_successful") == 0
    await health_server.stop()  # the old check must still be running, and see this
    await fake.wait_rib(lambda rib: VIP not in rib)


# finding 2
async def test_a_check_that_cannot_be_built_at_start_fails_and_the_others_announce(
    exabgp, health_server, plugin_config, tmp_path
):
    config = plugin_config(health_server.url, vips=[VIP, VIP2])
    config["checks"]["broken"] = broken_https_check(tmp_path)
    config["vips"][1]["checks"] = ["broken"]
    fake = exabgp(config)
    await fake.start()
    await fake.wait_for_line(f"withdraw route {VIP2}")
    await fake.wait_rib(lambda rib: VIP in rib)
    assert fake.process is not None and fake.process.returncode is None
    _, body = await api(config, "GET", "/v1/status")
    status = json.loads(body)
    assert status["checks"]["broken"]["last_result"]["reason"] == "probe_error"
    assert {v["prefix"]: v["desired"] for v in status["vips"]} == {
        VIP: "announce",
        VIP2: "withdraw",
    }


# finding 3
@pytest.mark.parametrize("dampening", [True, False])
async def test_a_stall_of_the_plugin_itself_withdraws_nothing(
    exabgp, health_server, plugin_config, dampening
):
    config = plugin_config(health_server.url, vips=[VIP, VIP2])
    config["dampening"] = {"enabled": dampening}
    fake = exabgp(config)
    await fake.start()
    await fake.wait_rib(lambda rib: {VIP, VIP2} <= set(rib))
    count = len(fake.commands)
    fake.signal(signal.SIGSTOP)  # 5 s: far past every verdict's TTL (0.7 s)
    await asyncio.sleep(5)
    fake.signal(signal.SIGCONT)
    await asyncio.sleep(2)
    sent = [c.line for c in fake.commands[count:]]
    assert not any(line.startswith("withdraw") for line in sent), sent
    assert {VIP, VIP2} <= fake.announced()
    _, metrics = await api(config, "GET", "/metrics")
    assert metric(metrics, "announcer_stalls_total") >= 1
    # and it still reacts: the service really failing is withdrawn
    await health_server.stop()
    await fake.wait_rib(lambda rib: not ({VIP, VIP2} & set(rib)))


# finding 4
async def test_an_empty_vips_list_drains_nothing(exabgp, health_server, plugin_config):
    config = plugin_config(health_server.url)
    fake = exabgp(config)
    await fake.start()
    await fake.wait_rib(lambda rib: VIP in rib)
    status, body = await api(config, "POST", "/v1/drain", {"vips": []})
    assert status == 400, body
    await asyncio.sleep(0.5)
    assert VIP in fake.announced()
    assert "65535:0" not in fake.rib[VIP]


# finding 8: an UNKNOWN check expires
async def test_a_check_that_never_settles_does_not_keep_a_predecessors_route(
    exabgp, health_server, plugin_config
):
    health_server.alternate = True  # ok, fail, ok, fail: never 3 in a row either way
    config = plugin_config(health_server.url)
    fake = exabgp(config)
    fake.rib[VIP] = f"announce route {VIP} next-hop self"  # left by the previous instance
    await fake.start()
    await fake.wait_rib(lambda rib: VIP not in rib, timeout=5)
    _, body = await api(config, "GET", "/v1/status")
    (vip,) = json.loads(body)["vips"]
    assert vip["desired"] == "withdraw" and vip["reason"] == "checks_down"


# finding 8: nothing ever asked ExaBGP what it holds
async def test_routes_this_config_does_not_want_are_withdrawn_at_start(
    exabgp, health_server, plugin_config
):
    config = plugin_config(health_server.url)
    fake = exabgp(config)
    stranger = "192.0.2.99/32"  # a VIP removed from the config while the plugin was down
    fake.rib[stranger] = f"announce route {stranger} next-hop self"
    await fake.start()
    await fake.wait_rib(lambda rib: VIP in rib and stranger not in rib)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "announcer",
        "status",
        "--api",
        f"http://{config['api']['listen']}",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    text = out.decode()
    assert f"{VIP:<24} announce   announced  healthy" in text, text
    assert f"withdrawn, not in this configuration: {stranger}" in text, text


async def test_a_vip_removed_by_reload_is_gone_after_a_crash_and_respawn(
    exabgp, health_server, plugin_config
):
    config = plugin_config(health_server.url, vips=[VIP, VIP2])
    fake = exabgp(config, fail_when=lambda line: line.startswith("withdraw"))
    await fake.start()
    await fake.wait_rib(lambda rib: {VIP, VIP2} <= set(rib))
    smaller = copy.deepcopy(config)
    smaller["vips"] = smaller["vips"][:1]
    write_config(fake.config_path, smaller)
    assert (await api(config, "POST", "/v1/reload"))[0] == 200
    await fake.wait_for_line(f"withdraw route {VIP2}")  # refused by this ExaBGP...
    fake.fail_when = lambda line: False
    await fake.restart_plugin()  # ...and the plugin dies before its retry
    await fake.wait_rib(lambda rib: VIP in rib and VIP2 not in rib)


# finding 8: a removed VIP's drain came back with the VIP
async def test_a_drain_of_a_removed_vip_does_not_come_back(
    exabgp, health_server, plugin_config, tmp_path
):
    config = plugin_config(health_server.url, vips=[VIP, VIP2])
    config["drain"]["state_file"] = str(tmp_path / "drains.json")
    fake = exabgp(config)
    await fake.start()
    await fake.wait_rib(lambda rib: {VIP, VIP2} <= set(rib))
    assert (await api(config, "POST", "/v1/drain", {"vips": [VIP2]}))[0] == 200
    await fake.wait_rib(lambda rib: VIP2 not in rib)
    smaller = copy.deepcopy(config)
    smaller["vips"] = smaller["vips"][:1]
    write_config(fake.config_path, smaller)
    assert (await api(config, "POST", "/v1/reload"))[0] == 200
    assert json.loads((tmp_path / "drains.json").read_text()) == {}
    write_config(fake.config_path, config)
    assert (await api(config, "POST", "/v1/reload"))[0] == 200
    await fake.restart_plugin()
    await fake.wait_rib(lambda rib: {VIP, VIP2} <= set(rib))


# finding 9: `require: any` against `all`, with two real checks
async def test_require_any_keeps_the_vip_while_one_check_is_up(exabgp, health_server):
    second = Switchable()
    await second.start()
    try:
        config = {
            "checks": {
                "a": fast_http_check(health_server.url),
                "b": fast_http_check(second.url),
            },
            "vips": [
                {"prefix": VIP, "checks": ["a", "b"], "require": "any"},
                {"prefix": VIP2, "checks": ["a", "b"], "require": "all"},
            ],
            "drain": {"gshut_period": 0},
            "api": {"listen": ""},
        }
        fake = exabgp(config)
        await fake.start()
        await fake.wait_rib(lambda rib: {VIP, VIP2} <= set(rib))
        second.status = 500
        await fake.wait_rib(lambda rib: VIP2 not in rib)
        await asyncio.sleep(0.5)
        assert VIP in fake.announced()
        health_server.status = 500
        await fake.wait_rib(lambda rib: VIP not in rib)
    finally:
        await second.stop()


# the watchdog: a wedged plugin must stop notifying systemd
async def test_the_plugin_feeds_systemds_watchdog_and_stops_when_wedged(
    exabgp, health_server, plugin_config, tmp_path
):
    import socket

    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()

    async def pings(seconds: float) -> list[bytes]:
        got: list[bytes] = []
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            try:
                got.append(sock.recv(64))
            except BlockingIOError:
                await asyncio.sleep(0.02)
        return got

    try:
        fake = exabgp(plugin_config(health_server.url))
        await fake.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"})
        await fake.wait_rib(lambda rib: VIP in rib)
        assert len(await pings(1.6)) >= 2  # every WatchdogSec/2 = 0.5 s
        fake.signal(signal.SIGSTOP)
        await pings(0.3)  # what was already on its way
        assert await pings(1.5) == []
        fake.signal(signal.SIGCONT)
        assert b"WATCHDOG=1" in await pings(1.5)
    finally:
        sock.close()
