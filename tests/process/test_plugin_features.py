"""Staged drain, drain persistence, hot reload, drain on stop, dampening and weights, with the
plugin in-process over an in-memory ExaBGP."""

import asyncio
import signal

import yaml

from announcer.app import Plugin
from announcer.config import load_config
from announcer.core import Drain, Undrain
from tests.fakes import fast_http_check
from tests.process.test_plugin_inprocess import MemoryChannel

VIP, VIP2 = "192.0.2.10/32", "192.0.2.11/32"


class Running:
    def __init__(self, config: dict, path):
        self.config = config
        self.path = path
        self.path.write_text(yaml.safe_dump(config))
        self.channel = MemoryChannel()
        self.plugin = Plugin(load_config(path), self.channel, str(path))
        self.task = asyncio.create_task(self.plugin.run())

    def since(self, mark: int) -> list[str]:
        return self.channel.commands[mark:]

    async def wait_for(self, fragment: str, after: int = 0, timeout: float = 5.0) -> int:
        """Index of the first command after `after` containing `fragment`."""
        async with asyncio.timeout(timeout):
            while True:
                for index in range(after, len(self.channel.commands)):
                    if fragment in self.channel.commands[index]:
                        return index
                self.channel.changed.clear()
                await self.channel.changed.wait()

    async def stop(self) -> int:
        self.plugin.request_stop("test")
        return await asyncio.wait_for(self.task, 10)


def base(url: str, port: int, **extra) -> dict:
    config = {
        "bgp": {
            "local_as": 65001,
            "router_id": "198.51.100.2",
            "neighbors": [{"address": "198.51.100.1", "peer_as": 65000}],
        },
        "checks": {"web": fast_http_check(url, rise=2, fall=2)},
        "vips": [{"prefix": VIP, "checks": ["web"]}],
        "api": {"listen": f"127.0.0.1:{port}"},
        "addresses": {"mode": "ignore"},  # this machine does not hold the VIPs
    }
    config.update(extra)
    return config


async def test_staged_drain_announces_graceful_shutdown_then_withdraws(
    health_server, unused_tcp_port, tmp_path
):
    run = Running(
        base(health_server.url, unused_tcp_port, drain={"gshut_period": "400ms"}),
        tmp_path / "c.yaml",
    )
    first = await run.wait_for(f"announce route {VIP}")
    assert "65535:0" not in run.channel.commands[first]
    await run.plugin.owner.submit(Drain(None, "maintenance", "test"))
    gshut = await run.wait_for("community [ 65535:0 ]", after=first + 1)
    withdraw = await run.wait_for(f"withdraw route {VIP}", after=gshut + 1)
    assert withdraw > gshut
    await run.plugin.owner.submit(Undrain(None, "test"))
    back = await run.wait_for(f"announce route {VIP}", after=withdraw + 1)
    assert "65535:0" not in run.channel.commands[back]
    await run.stop()


async def test_a_drain_survives_a_restart(health_server, unused_tcp_port, tmp_path):
    state = tmp_path / "drains.json"
    config = base(
        health_server.url, unused_tcp_port, drain={"gshut_period": 0, "state_file": str(state)}
    )
    run = Running(config, tmp_path / "c.yaml")
    await run.wait_for("announce")
    await run.plugin.owner.submit(Drain((VIP,), "rma", "test"))
    await run.wait_for("withdraw")
    await run.stop()
    again = Running(config, tmp_path / "c.yaml")
    await again.wait_for(f"withdraw route {VIP}")
    await asyncio.sleep(0.6)  # long enough for the checks to pass
    assert not [c for c in again.channel.commands if c.startswith("announce")]
    assert again.plugin.owner.state.drains[VIP].reason == "rma"
    await again.stop()


async def test_a_drain_asked_not_to_persist_is_not_saved(health_server, unused_tcp_port, tmp_path):
    from aiohttp import ClientSession

    from tests.fakes import wait_for_api

    state = tmp_path / "drains.json"
    config = base(
        health_server.url, unused_tcp_port, drain={"gshut_period": 0, "state_file": str(state)}
    )
    run = Running(config, tmp_path / "c.yaml")
    await run.wait_for("announce")
    await wait_for_api(f"127.0.0.1:{unused_tcp_port}")
    async with ClientSession() as http:
        url = f"http://127.0.0.1:{unused_tcp_port}/v1/drain"
        async with http.post(url, json={"persist": False, "reason": "stop"}) as r:
            assert r.status == 200
    await run.wait_for("withdraw")
    assert yaml.safe_load(state.read_text()) == {}
    await run.stop()


async def test_reload_adds_a_vip_without_touching_the_others(
    health_server, unused_tcp_port, tmp_path
):
    config = base(health_server.url, unused_tcp_port)
    run = Running(config, tmp_path / "c.yaml")
    await run.wait_for(f"announce route {VIP}")
    await asyncio.sleep(0.3)
    mark = len(run.channel.commands)
    config["vips"].append({"prefix": VIP2, "checks": ["web"]})
    run.path.write_text(yaml.safe_dump(config))
    assert await run.plugin.reload() == []
    await run.wait_for(f"announce route {VIP2}", after=mark)
    await asyncio.sleep(0.5)
    assert not [c for c in run.since(mark) if VIP in c], run.since(mark)
    await run.stop()


async def test_reload_with_a_broken_config_changes_nothing(
    health_server, unused_tcp_port, tmp_path
):
    config = base(health_server.url, unused_tcp_port)
    run = Running(config, tmp_path / "c.yaml")
    await run.wait_for(f"announce route {VIP}")
    mark = len(run.channel.commands)
    run.path.write_text("vips: [{prefix: 192.0.2.0/33, checks: [web]}]\nchecks: {}\n")
    problems = await run.plugin.reload()
    assert any("192.0.2.0/33" in p for p in problems)
    await asyncio.sleep(0.5)
    assert run.since(mark) == []
    assert run.plugin.config.vips[0].prefix == VIP
    await run.stop()


async def test_sighup_reloads(health_server, unused_tcp_port, tmp_path):
    from announcer.app import run_plugin

    config = base(health_server.url, unused_tcp_port)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    channel = MemoryChannel()
    task = asyncio.create_task(run_plugin(load_config(path), channel, str(path)))
    async with asyncio.timeout(5):
        while not any("announce" in c for c in channel.commands):
            await asyncio.sleep(0.05)
    config["vips"][0]["med"] = 250
    path.write_text(yaml.safe_dump(config))
    signal.raise_signal(signal.SIGHUP)
    async with asyncio.timeout(5):
        while not any("med 250" in c for c in channel.commands):
            await asyncio.sleep(0.05)
    signal.raise_signal(signal.SIGTERM)
    assert await asyncio.wait_for(task, 5) == 0


async def test_drain_on_stop(health_server, unused_tcp_port, tmp_path):
    run = Running(
        base(health_server.url, unused_tcp_port, drain={"gshut_period": "300ms", "on_stop": True}),
        tmp_path / "c.yaml",
    )
    await run.wait_for(f"announce route {VIP}")
    assert await run.stop() == 0
    commands = run.channel.commands
    gshut = next(i for i, c in enumerate(commands) if "65535:0" in c)
    withdraw = next(i for i, c in enumerate(commands) if c.startswith("withdraw"))
    assert gshut < withdraw
    # the drain ran its whole period before the withdraw (the reducer's `Drained` ends it)
    assert run.channel.times[withdraw] - run.channel.times[gshut] >= 0.3


async def test_a_flapping_check_is_de_preferred_then_released(
    health_server, unused_tcp_port, tmp_path
):
    config = base(
        health_server.url, unused_tcp_port, dampening={"half_life": "2s", "max_suppress": "4s"}
    )
    config["checks"]["web"].update(rise=1, fall=1, interval="50ms", timeout="40ms")
    run = Running(config, tmp_path / "c.yaml")
    await run.wait_for("announce")
    for _ in range(20):  # flap every 120 ms
        health_server.status = 500 if health_server.status == 200 else 200
        await asyncio.sleep(0.12)
    health_server.status = 200
    await asyncio.sleep(0.2)
    vip = run.plugin.owner.state.vips[VIP].decision
    assert (vip.verdict.value, vip.reason.value) == ("announce", "suppressed"), vip
    announces = [c for c in run.channel.commands if c.startswith(f"announce route {VIP}")]
    # the first three announces are plain; from the third withdrawal on, every announce is a
    # last resort only (GRACEFUL_SHUTDOWN): a fleet suppressed at once still serves
    assert not any("65535:0" in c for c in announces[:3]), announces
    assert announces[3:] and all("65535:0" in c for c in announces[3:]), announces
    mark = len(run.channel.commands)
    released = await run.wait_for(f"announce route {VIP}", after=mark, timeout=8)
    assert "65535:0" not in run.channel.commands[released]
    await run.stop()


async def test_static_weight_sends_link_bandwidth(health_server, unused_tcp_port, tmp_path):
    config = base(health_server.url, unused_tcp_port)
    config["vips"][0]["weight"] = {"bandwidth_mbps": 1000}
    run = Running(config, tmp_path / "c.yaml")
    index = await run.wait_for("announce")
    assert "extended-community [ bandwidth:65001:125000000 ]" in run.channel.commands[index]
    await run.stop()


async def test_min_announce_interval_holds_a_quick_comeback(
    health_server, unused_tcp_port, tmp_path
):
    config = base(
        health_server.url,
        unused_tcp_port,
        dampening={"enabled": False, "min_announce_interval": "1500ms"},
    )
    config["checks"]["web"].update(rise=1, fall=1, interval="50ms", timeout="40ms")
    run = Running(config, tmp_path / "c.yaml")
    first = await run.wait_for(f"announce route {VIP}")
    health_server.status = 500
    withdrawn = await run.wait_for(f"withdraw route {VIP}", after=first + 1)
    health_server.status = 200
    await asyncio.sleep(0.4)  # the check is up again, well inside the hold-down
    assert run.plugin.owner.state.vips[VIP].decision.reason.value == "hold_down"
    # back as a last resort only, until the interval is over
    comeback = [c for c in run.since(withdrawn + 1) if c.startswith("announce")]
    assert comeback and all("65535:0" in c for c in comeback), comeback
    released = await run.wait_for(f"announce route {VIP}", after=len(run.channel.commands))
    assert "65535:0" not in run.channel.commands[released]
    await run.stop()


async def test_drain_waits_for_the_load_balancer_connections(
    health_server, unused_tcp_port, tmp_path
):
    """`connections_below`: the withdraw waits until HAProxy reports few enough sessions."""
    from tests.process.test_probes import SHOW_STAT

    reply = {"text": SHOW_STAT}  # the recorded web backend reports 7 current sessions

    async def serve(reader, writer):
        await reader.readline()
        writer.write(reply["text"].encode())
        await writer.drain()
        writer.close()

    socket_path = str(tmp_path / "admin.sock")
    server = await asyncio.start_unix_server(serve, socket_path)
    config = base(
        health_server.url,
        unused_tcp_port,
        drain={
            "gshut_period": "200ms",
            "connections_below": 5,
            "connections_check": "lb",
            "max_wait": "20s",
        },
    )
    config["checks"]["lb"] = {
        "haproxy": {"socket": socket_path, "backend": "web"},
        "interval": "100ms",
        "timeout": "80ms",
    }
    config["vips"][0]["checks"] = ["web", "lb"]
    run = Running(config, tmp_path / "c.yaml")
    try:
        first = await run.wait_for(f"announce route {VIP}")
        await run.plugin.owner.submit(Drain(None, "maintenance", "test"))
        gshut = await run.wait_for("65535:0", after=first + 1)
        await asyncio.sleep(0.8)  # well past gshut_period: 7 sessions keep it announced
        assert not [c for c in run.since(gshut + 1) if c.startswith("withdraw")]
        assert run.plugin.owner.state.vips[VIP].phase.value == "graceful_shutdown"
        reply["text"] = SHOW_STAT.replace("web,BACKEND,0,0,7,", "web,BACKEND,0,0,2,")
        await run.wait_for(f"withdraw route {VIP}", after=gshut + 1, timeout=5)
        await run.stop()
    finally:
        server.close()
        await server.wait_closed()


async def test_the_benchmark_reads_its_failover_breakdown_from_the_log_fields(
    health_server, unused_tcp_port, tmp_path
):
    """The benchmark's failover breakdown (first failed probe, verdict, ExaBGP's ack) reads
    the plugin's JSON log lines by their fields: here from a real failover's lines."""
    import io
    import json
    import logging
    import time

    from announcer.logs import JsonFormatter
    from bench.run import breakdown_of

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("announcer")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # setLevel: it clears the loggers' cached levels
    try:
        run = Running(base(health_server.url, unused_tcp_port), tmp_path / "c.yaml")
        first = await run.wait_for(f"announce route {VIP}")
        t0 = time.time()
        health_server.status = 500
        await run.wait_for(f"withdraw route {VIP}", after=first + 1)
        try:
            async with asyncio.timeout(5):  # the ack, and its "routes synced" line
                while '"withdrawn": 1' not in stream.getvalue():
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise AssertionError(stream.getvalue()) from None
        t1 = time.time() + 0.01
        await run.stop()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    parts = breakdown_of(events, [(t0, t1)])
    assert parts["evidence"] == {"definite": 1}, events
    assert {"detect", "confirm", "exabgp", "router"} <= set(parts), (parts, events)
    assert all(parts[k] >= 0 for k in ("detect", "confirm", "exabgp", "router")), parts
