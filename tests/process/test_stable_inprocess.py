"""Stable next hops through the whole plugin, in one process: the routes on the pipe are one
ADD-PATH path per slot, the health file tells keepalived whether this host may hold slots,
keepalived's death withdraws the slotted VIPs, and /v1/slots and its release answer."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from aiohttp import ClientSession

from announcer.app import Plugin
from announcer.config import parse_config
from tests.fakes import wait_for_api
from tests.process.test_fleet_inprocess import ME, ROUTER, negotiated, session_up
from tests.process.test_plugin_inprocess import MemoryChannel

VIP = "192.0.2.10/32"
SLOT_41 = f"announce route {VIP} path-information 41 next-hop 198.51.100.41"
SLOT_43 = f"announce route {VIP} path-information 43 next-hop 198.51.100.43"


@pytest.fixture
async def stable_plugin(health_server, plugin_config, tmp_path):
    config = plugin_config(health_server.url)
    config["bgp"] = {
        "local_as": 65013,
        "router_id": ME,
        "neighbors": [{"address": ROUTER, "peer_as": 65000}],
    }
    config["fleet"] = {"view_after": "200ms"}
    (tmp_path / "keepalived.pid").write_text(f"{os.getpid()}\n")  # a live process
    config["stable_next_hops"] = {
        "interface": "eth0",
        "slots": [
            {"address": "198.51.100.41", "vrid": 41, "priority": 200},
            {"address": "198.51.100.43", "vrid": 43, "priority": 100},
        ],
        "health_file": str(tmp_path / "run" / "slots"),
        "keepalived_pid_file": str(tmp_path / "keepalived.pid"),
    }
    channel = MemoryChannel()
    plugin = Plugin(parse_config(config), channel)
    task = asyncio.create_task(plugin.run())
    channel.to_plugin.put_nowait(negotiated())
    channel.to_plugin.put_nowait(session_up())
    await wait_for_api(config["api"]["listen"])
    yield plugin, channel, f"http://{config['api']['listen']}", tmp_path
    plugin.request_stop("test")
    await task


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _health(tmp_path: Path) -> str:
    path = tmp_path / "run" / "slots"
    return path.read_text().strip() if path.exists() else ""


async def test_a_vip_is_one_path_per_slot_and_the_host_may_hold_slots_while_it_serves(
    stable_plugin, health_server
):
    _, channel, _, tmp_path = stable_plugin
    await channel.wait_for(SLOT_41)
    await channel.wait_for(SLOT_43)
    assert not any(f"route {VIP} next-hop self" in c for c in channel.commands)
    await _until(lambda: _health(tmp_path) == "0")
    health_server.status = 500  # the checks fail: both paths go, and so do the slots
    await channel.wait_for(f"withdraw route {VIP} path-information 41")
    await channel.wait_for(f"withdraw route {VIP} path-information 43")
    await _until(lambda: _health(tmp_path) == "1")
    health_server.status = 200
    await _until(lambda: _health(tmp_path) == "0")


async def test_keepalived_gone_withdraws_the_slotted_vip_until_it_is_back(stable_plugin):
    plugin, channel, _, tmp_path = stable_plugin
    await _until(lambda: _health(tmp_path) == "0")
    (tmp_path / "keepalived.pid").write_text("999999999\n")  # no such process
    await channel.wait_for(f"withdraw route {VIP} path-information 41")
    assert plugin.owner.state.vips[VIP].decision.reason == "keepalived_down"
    await _until(lambda: _health(tmp_path) == "1")
    announced = len([c for c in channel.commands if c.startswith(SLOT_41)])
    (tmp_path / "keepalived.pid").write_text(f"{os.getpid()}\n")
    await _until(lambda: len([c for c in channel.commands if c.startswith(SLOT_41)]) > announced)
    await _until(lambda: _health(tmp_path) == "0")


async def test_slots_are_shown_and_a_release_is_refused_for_what_cannot_be_handed_over(
    stable_plugin,
):
    _, _, base, tmp_path = stable_plugin
    await _until(lambda: _health(tmp_path) == "0")
    async with ClientSession() as http:
        async with http.get(f"{base}/v1/slots") as answer:
            document = await answer.json()
        assert document["enabled"] and document["may_hold"]
        assert document["keepalived_running"] is True
        assert [(s["address"], s["priority"], s["held"]) for s in document["slots"]] == [
            ("198.51.100.41", 200, False),
            ("198.51.100.43", 100, False),
        ]
        body = {"slots": ["198.51.100.41"]}
        async with http.post(f"{base}/v1/slots/release", json=body) as answer:
            assert answer.status == 409
            assert "not held by this host" in (await answer.json())["error"]
        body = {"slots": ["198.51.100.99"]}
        async with http.post(f"{base}/v1/slots/release", json=body) as answer:
            assert answer.status == 409
            assert "not a slot of this host" in (await answer.json())["error"]
        async with http.post(f"{base}/v1/slots/release", json={"slots": []}) as answer:
            assert answer.status == 400


async def test_stopping_hands_every_slot_over_first(stable_plugin):
    plugin, _, _, tmp_path = stable_plugin
    await _until(lambda: _health(tmp_path) == "0")
    plugin.request_stop("test")
    await _until(lambda: _health(tmp_path) == "1")
