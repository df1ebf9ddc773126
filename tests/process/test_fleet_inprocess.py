"""The fleet through the whole plugin, in one process: ExaBGP's JSON lines for the session's
capabilities and the router's paths go in on the pipe, and what comes out is the commands
(tagged routes, a panic instead of a withdraw), /v1/fleet and the drain budget's 409."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import ClientSession

from announcer.app import Plugin
from announcer.config import parse_config
from tests.fakes import wait_for_api
from tests.process.test_plugin_inprocess import MemoryChannel

ROUTER = "198.51.100.1"
ME = "198.51.100.13"
ME_ID = 3325256717  # 198.51.100.13 as a number
OTHERS = {"198.51.100.11": 3325256715, "198.51.100.12": 3325256716}
VIP = "192.0.2.10/32"


def _neighbor(**body: object) -> dict[str, object]:
    return {
        "address": {"local": ME, "peer": ROUTER},
        "asn": {"local": 65013, "peer": 65000},
        **body,
    }


def negotiated(add_path: bool = True) -> str:
    families = ["ipv4 unicast"]
    body = {
        "message_size": 4096,
        "hold_time": 3,
        "families": families,
        "add_path": {"send": [], "receive": families if add_path else []},
    }
    return json.dumps(
        {"exabgp": "5.0.0", "type": "negotiated", "neighbor": _neighbor(negotiated=body)}
    )


def session_up() -> str:
    return json.dumps({"exabgp": "5.0.0", "type": "state", "neighbor": _neighbor(state="up")})


def path(host_id: int, path_id: str, mark: int) -> str:
    """An UPDATE as ExaBGP's JSON encoder writes it for a path received with ADD-PATH."""
    update = {
        "attribute": {
            "origin": "igp",
            "as-path": [65000, 65011],
            "med": 100,
            "large-community": [[65534, host_id, mark]],
        },
        "announce": {"ipv4 unicast": {ROUTER: [{"nlri": VIP, "path-information": path_id}]}},
    }
    message = {"update": update}
    return json.dumps(
        {
            "exabgp": "5.0.0",
            "type": "update",
            "neighbor": _neighbor(direction="receive", message=message),
        }
    )


def withdrawn(path_id: str) -> str:
    message = {
        "update": {"withdraw": {"ipv4 unicast": [{"nlri": VIP, "path-information": path_id}]}}
    }
    return json.dumps(
        {
            "exabgp": "5.0.0",
            "type": "update",
            "neighbor": _neighbor(direction="receive", message=message),
        }
    )


@pytest.fixture
async def fleet_plugin(health_server, plugin_config):
    config = plugin_config(health_server.url)
    config["bgp"] = {
        "local_as": 65013,
        "router_id": ME,
        "neighbors": [{"address": ROUTER, "peer_as": 65000}],
    }
    config["fleet"] = {
        "min_serving": 1,
        "drain_min_serving": 2,
        "settle": "100ms",
        "panic_exit": "500ms",
        "view_after": "200ms",
    }
    channel = MemoryChannel()
    plugin = Plugin(parse_config(config), channel)
    task = asyncio.create_task(plugin.run())
    for line in (negotiated(), session_up(), path(OTHERS["198.51.100.11"], "0.0.0.1", 1)):
        channel.to_plugin.put_nowait(line)
    channel.to_plugin.put_nowait(path(OTHERS["198.51.100.12"], "0.0.0.2", 1))
    await wait_for_api(config["api"]["listen"])
    yield plugin, channel, f"http://{config['api']['listen']}"
    plugin.request_stop("test")
    await task


async def _fleet(base: str) -> dict[str, object]:
    async with ClientSession() as http, http.get(f"{base}/v1/fleet") as answer:
        assert answer.status == 200
        return await answer.json()  # type: ignore[no-any-return]


async def _drain(base: str, force: bool = False) -> tuple[int, dict[str, object]]:
    body = {"vips": [VIP], "force": force}
    async with ClientSession() as http, http.post(f"{base}/v1/drain", json=body) as answer:
        return answer.status, await answer.json()


async def _until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_routes_are_tagged_and_the_fleet_is_shown_as_the_router_reports_it(fleet_plugin):
    plugin, channel, base = fleet_plugin
    await channel.wait_for(f"large-community [ 65534:{ME_ID}:1 ]")
    await _until(lambda: plugin.owner.state.spec.fleet is not None and _known(plugin))
    document = await _fleet(base)
    vip = document["vips"][0]  # type: ignore[index]
    assert vip["others_serving"] == 2
    hosts = vip["routers"][ROUTER]["hosts"]
    assert [(h["host"], h["mark"]) for h in hosts] == [
        ("198.51.100.11", "normal"),
        ("198.51.100.12", "normal"),
    ]


def _known(plugin: Plugin) -> bool:
    view = plugin.owner.state.fleet.get(ROUTER)
    return view is not None and "ipv4 unicast" in view.complete


async def test_a_drain_past_the_budget_is_refused_with_who_serves_and_forced_it_goes(fleet_plugin):
    plugin, channel, base = fleet_plugin
    await _until(lambda: _known(plugin))
    channel.to_plugin.put_nowait(withdrawn("0.0.0.1"))  # .11 leaves: one other serves
    await _until(lambda: len(plugin.owner.state.fleet[ROUTER].paths[VIP]) == 1)
    status, answer = await _drain(base)
    assert status == 409, answer
    assert VIP in answer["refused"]  # type: ignore[operator]
    assert "1 other host(s) serve it" in answer["refused"][VIP]  # type: ignore[index]
    assert plugin.owner.state.drains == {}
    status, answer = await _drain(base, force=True)
    assert status == 200, answer
    await channel.wait_for(f"withdraw route {VIP}")  # drained (gshut_period 0 here)


async def test_soft_failure_with_nobody_else_serving_panics_and_ends_when_another_serves(
    fleet_plugin, health_server
):
    plugin, channel, _ = fleet_plugin
    await channel.wait_for(f"large-community [ 65534:{ME_ID}:1 ]")
    await _until(lambda: _known(plugin))
    channel.to_plugin.put_nowait(withdrawn("0.0.0.1"))
    channel.to_plugin.put_nowait(path(OTHERS["198.51.100.12"], "0.0.0.2", 3))  # .12 in panic
    health_server.status = 500
    await channel.wait_for(f"large-community [ 65534:{ME_ID}:3 ]")  # panic, still announced
    assert not any("withdraw" in c for c in channel.commands)
    assert plugin.owner.state.vips[VIP].decision.reason == "panic"
    channel.to_plugin.put_nowait(path(OTHERS["198.51.100.11"], "0.0.0.1", 1))  # .11 is back
    await channel.wait_for(f"withdraw route {VIP}")
    assert plugin.owner.state.vips[VIP].decision.reason == "checks_down"
