"""The plugin in-process over an in-memory channel: crash handling and the HTTP API."""

import asyncio
import time

import pytest
from aiohttp import ClientSession

from announcer.app import Plugin
from announcer.config import parse_config
from tests.fakes import wait_for_api


class MemoryChannel:
    """ExaBGP's side in memory: acks every command, records them."""

    def __init__(self) -> None:
        self.to_plugin: asyncio.Queue[str | None] = asyncio.Queue()
        self.commands: list[str] = []
        self.times: list[float] = []  # monotonic, when each command was written
        self.changed = asyncio.Event()

    async def read_line(self) -> str | None:
        return await self.to_plugin.get()

    async def write_lines(self, lines) -> None:
        for line in lines:
            self.commands.append(line)
            self.times.append(time.monotonic())
            self.to_plugin.put_nowait("done")
        self.changed.set()

    def close(self) -> None:
        pass

    async def wait_for(self, fragment: str, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not any(fragment in c for c in self.commands):
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def running(health_server, plugin_config, tmp_path):
    started = []

    async def start(token: str | None = None, **overrides):
        config = plugin_config(health_server.url, vips=["192.0.2.10/32", "192.0.2.11/32"])
        if token is not None:
            (tmp_path / "token").touch(mode=0o600)
            (tmp_path / "token").write_text(token + "\n")
            config["api"]["token_file"] = str(tmp_path / "token")
        config.update(overrides)
        channel = MemoryChannel()
        plugin = Plugin(parse_config(config), channel)
        task = asyncio.create_task(plugin.run())
        started.append((plugin, task))
        await channel.wait_for("announce")
        await wait_for_api(config["api"]["listen"])
        return plugin, task, channel, f"http://{config['api']['listen']}"

    yield start
    for plugin, task in started:
        plugin.request_stop("test over")
        await asyncio.wait_for(task, 5)


async def test_an_exception_inside_the_loop_withdraws_every_vip(running):
    plugin, task, channel, _ = await running()

    def explode(*args):
        raise RuntimeError("bug in the reducer")

    plugin.owner.apply = explode  # the state task fails, and so does the last-resort Stop step
    assert await asyncio.wait_for(task, 5) == 1
    withdrawn = " ".join(c for c in channel.commands if c.startswith("withdraw"))
    assert "192.0.2.10/32" in withdrawn and "192.0.2.11/32" in withdrawn


async def test_status_metrics_and_healthz(running):
    _, _, _, base = await running()
    await asyncio.sleep(0.3)
    async with ClientSession() as http:
        async with http.get(f"{base}/v1/status") as response:
            status = await response.json()
        async with http.get(f"{base}/metrics") as response:
            metrics = await response.text()
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200
    vip = status["vips"][0]
    assert vip["desired"] == "announce" and vip["acknowledged"] == "announced"
    assert status["checks"]["web"]["state"] == "up"
    assert status["checks"]["web"]["last_result"]["reason"] == "ok"
    assert 'announcer_vip_acknowledged_state{state="announced",vip="192.0.2.10/32"} 1.0' in metrics
    assert 'announcer_check_up{check="web"} 1.0' in metrics
    assert "announcer_probe_duration_seconds_bucket" in metrics
    assert 'announcer_exabgp_commands_total{kind="announce",result="done"}' in metrics


async def test_drain_and_undrain_one_vip(running):
    _, _, channel, base = await running()
    async with ClientSession() as http:
        async with http.post(
            f"{base}/v1/drain", json={"vips": ["192.0.2.11"], "reason": "maintenance"}
        ) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["drained"] == ["192.0.2.11/32"]
        await channel.wait_for("withdraw route 192.0.2.11/32")
        async with http.get(f"{base}/v1/status") as r:
            vips = {v["prefix"]: v for v in (await r.json())["vips"]}
        assert vips["192.0.2.11/32"]["reason"] == "drained"
        assert vips["192.0.2.11/32"]["drain"]["reason"] == "maintenance"
        assert vips["192.0.2.10/32"]["desired"] == "announce"
        count = len(channel.commands)
        async with http.post(f"{base}/v1/undrain", json={}) as r:
            assert r.status == 200
        await channel.wait_for("announce route 192.0.2.11/32")
        assert not any("192.0.2.10/32" in c for c in channel.commands[count:])


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "invalid request body"),
        (b'{"vips": []}', "vips is empty: leave it out to mean every VIP"),
        (b'{"vips": "192.0.2.10/32"}', "invalid request body"),
        (b'{"vips": ["198.18.0.1/32"]}', "unknown VIPs"),
        (b'{"reason": "a\\nb"}', "invalid request body"),
        (b'{"surprise": 1}', "invalid request body"),
    ],
)
async def test_bad_api_bodies_are_rejected_and_change_nothing(running, body, problem):
    plugin, _, _channel, base = await running()
    async with ClientSession() as http, http.post(f"{base}/v1/drain", data=body) as r:
        assert r.status == 400
        assert (await r.json())["error"] == problem
    assert plugin.owner.state.drains == {}


async def test_token_is_required_for_changes_when_set(running):
    plugin, _, _, base = await running(token="s3cret-s3cret-s3cret")
    async with ClientSession() as http:
        async with http.post(f"{base}/v1/drain", json={}) as r:
            assert r.status == 401
        headers = {"Authorization": "Bearer wrong"}
        async with http.post(f"{base}/v1/drain", json={}, headers=headers) as r:
            assert r.status == 401
        async with http.get(f"{base}/v1/status") as r:
            assert r.status == 200
        headers = {"Authorization": "Bearer s3cret-s3cret-s3cret"}
        async with http.post(f"{base}/v1/drain", json={}, headers=headers) as r:
            assert r.status == 200
    assert set(plugin.owner.state.drains) == {"192.0.2.10/32", "192.0.2.11/32"}


async def test_drain_file_drains_everything(running, tmp_path):
    drain_file = tmp_path / "drain"
    _, _, channel, _ = await running(drain={"file": str(drain_file), "gshut_period": 0})
    drain_file.touch()
    await channel.wait_for("withdraw")
    withdrawn = " ".join(c for c in channel.commands if c.startswith("withdraw"))
    assert "192.0.2.10/32" in withdrawn and "192.0.2.11/32" in withdrawn
    drain_file.unlink()
    count = len(channel.commands)
    async with asyncio.timeout(5):
        while not any(c.startswith("announce") for c in channel.commands[count:]):
            await asyncio.sleep(0.05)


async def test_api_listens_on_loopback_by_default():
    config = parse_config(
        {
            "checks": {"w": {"tcp": {"port": 1}}},
            "vips": [{"prefix": "192.0.2.1/32", "checks": ["w"]}],
        }
    )
    assert config.api.host == "127.0.0.1"


async def test_a_slow_start_up_is_not_reported_as_a_stall(
    health_server, plugin_config, monkeypatch
):
    """Building and starting ten thousand checks takes the loop a second or more: that is
    start-up, not the plugin stalling (which would warn and probe every check again)."""
    from announcer.app.checks import RunningChecks

    start = RunningChecks.start

    def slow_start(self, group, config, probes):
        time.sleep(1.5)  # as long as a very large configuration takes, and past stall_after
        start(self, group, config, probes)

    monkeypatch.setattr(RunningChecks, "start", slow_start)
    channel = MemoryChannel()
    plugin = Plugin(parse_config(plugin_config(health_server.url)), channel)
    task = asyncio.create_task(plugin.run())
    try:
        await channel.wait_for("announce")
        assert plugin.owner.state.stalls == 0
    finally:
        plugin.request_stop("test over")
        await asyncio.wait_for(task, 5)
