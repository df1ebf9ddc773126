"""`announcer run` under a real ExaBGP 5.0: what goes on the wire."""

import os
import signal

import pytest

from tests.exabgp_pair import ExabgpPair

pytestmark = pytest.mark.exabgp
VIP = "192.0.2.10/32"


@pytest.fixture
def pair(tmp_path, unused_tcp_port_factory, health_server, plugin_config):
    started = []

    def make(ack: bool = True, **plugin) -> ExabgpPair:
        config = plugin_config(health_server.url, vips=[VIP, "192.0.2.11/32"])
        config.update(plugin)
        p = ExabgpPair(tmp_path, unused_tcp_port_factory(), config, ack=ack)
        started.append(p)
        p.start()
        return p

    yield make
    for p in started:
        p.stop()


def announced(updates, prefix):
    state = None
    for kind, p in updates:
        if p == prefix:
            state = kind
    return state == "announce"


async def test_announce_and_withdraw_reach_the_wire(pair, health_server):
    p = pair()
    await _until(p, lambda u: announced(u, VIP) and announced(u, "192.0.2.11/32"))
    await health_server.stop()
    await _until(p, lambda u: ("withdraw", VIP) in u and ("withdraw", "192.0.2.11/32") in u)
    # ExaBGP 5.0 answers the pipe's barrier with its header line, so every batch is counted
    logs = "".join(path.read_text() for path in p.workdir.glob("*.log"))
    assert "barrier" not in logs and "re-aligning" not in logs and "do not add up" not in logs


async def test_sigterm_withdraws_and_exabgp_respawns_the_plugin(pair, health_server):
    p = pair()
    await _until(p, lambda u: announced(u, VIP))
    (pid,) = p.plugin_pids()
    os.kill(pid, signal.SIGTERM)
    await _until(p, lambda u: ("withdraw", VIP) in u)
    # ExaBGP starts a new plugin, which announces again once its checks pass
    await _until(p, lambda u: announced(u, VIP))


async def test_a_route_left_in_exabgp_by_a_killed_plugin_is_withdrawn_by_the_next(
    pair, health_server
):
    """The VIP is removed from the file and the plugin is SIGKILLed (it cannot withdraw): the
    respawned plugin asks ExaBGP what it holds (`show adj-rib out json`) and withdraws it."""
    import yaml

    p = pair()
    await _until(p, lambda u: announced(u, VIP) and announced(u, "192.0.2.11/32"))
    config = yaml.safe_load((p.workdir / "plugin.yaml").read_text())
    config["vips"] = config["vips"][:1]
    (p.workdir / "plugin.yaml").write_text(yaml.safe_dump(config))
    (pid,) = p.plugin_pids()
    os.kill(pid, signal.SIGKILL)
    await _until(p, lambda u: ("withdraw", "192.0.2.11/32") in u)
    assert announced(p.updates(), VIP)


async def test_works_with_exabgp_acks_turned_off(pair, health_server):
    p = pair(ack=False)
    await _until(p, lambda u: announced(u, VIP))
    await health_server.stop()
    await _until(p, lambda u: ("withdraw", VIP) in u)


async def _until(p: ExabgpPair, predicate, timeout: float = 20.0) -> None:
    # the health server runs on this event loop: wait without blocking it
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not predicate(p.updates()):
        if time.monotonic() > deadline:
            p.wait_for(predicate, timeout=0)
        await asyncio.sleep(0.1)
