"""Nothing ExaBGP loses, a local process holds or a bad file holds can wedge the plugin.

Each test runs `announcer run` as a process under a fake ExaBGP that keeps an adj-rib-out,
and names the finding of the guarded-announcements issue it covers; each failed on the main
branch before that issue's change.
"""

from __future__ import annotations

import asyncio
import json
import time

from tests.unit.test_faults import api

VIP, VIP2 = "192.0.2.10/32", "192.0.2.11/32"


async def _status(config: dict) -> dict:
    _, body = await api(config, "GET", "/v1/status")
    return json.loads(body)


# finding 2: one answer ExaBGP never sends, at start
async def test_an_unanswered_startup_query_costs_nothing_later(
    exabgp, health_server, plugin_config
):
    config = plugin_config(health_server.url)
    stranger = "192.0.2.99/32"  # left in ExaBGP by a predecessor
    fake = exabgp(config, drop_answer=[lambda line: line == "show adj-rib out json"])
    fake.rib[stranger] = f"announce route {stranger} next-hop self"
    started = time.monotonic()
    await fake.start()
    await fake.wait_rib(lambda rib: VIP in rib and stranger not in rib, timeout=5)
    assert fake.dropped == ["show adj-rib out json"]
    assert time.monotonic() - started < 4.0  # an ack timeout is 5 s: none was waited for
    status = await _status(config)
    assert [v["acknowledged"] for v in status["vips"]] == ["announced"]
    assert status["exabgp"]["pending_commands"] == 0
    await _withdraws_promptly(fake, health_server)


# finding 2: one answer ExaBGP never sends, in steady state
async def test_an_unanswered_command_in_steady_state_costs_one_retry(
    exabgp, health_server, plugin_config
):
    config = plugin_config(health_server.url, vips=[VIP, VIP2])
    fake = exabgp(config)
    await fake.start()
    await fake.wait_rib(lambda rib: {VIP, VIP2} <= set(rib))
    fake.drop_answer.append(lambda line: line.startswith("withdraw"))
    assert (await api(config, "POST", "/v1/drain", {"vips": [VIP2]}))[0] == 200
    await fake.wait_rib(lambda rib: VIP2 not in rib)
    assert (await api(config, "POST", "/v1/undrain", {"vips": [VIP2]}))[0] == 200
    await fake.wait_rib(lambda rib: {VIP, VIP2} <= set(rib))
    assert fake.dropped and fake.dropped[0].startswith("withdraw")
    deadline = time.monotonic() + 3
    while (status := await _status(config))["exabgp"]["pending_commands"] or any(
        v["acknowledged"] != "announced" for v in status["vips"]
    ):
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.1)
    await _withdraws_promptly(fake, health_server)


async def _withdraws_promptly(fake, health_server) -> None:
    """After the lost answer, a failing service leaves ExaBGP's RIB at the usual pace (three
    failed probes 50 ms apart), not in the 5-second slots of a pipe out of step."""
    await asyncio.sleep(0.3)
    await health_server.stop()
    stopped = time.monotonic()
    await fake.wait_rib(lambda rib: VIP not in rib, timeout=5)
    assert time.monotonic() - stopped < 1.5
