"""Nothing ExaBGP loses, a local process holds or a bad file holds can wedge the plugin.

Each test runs `announcer run` as a process under a fake ExaBGP that keeps an adj-rib-out,
and names the finding of the guarded-announcements issue it covers; each failed on the main
branch before that issue's change.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from tests.fakes import wait_for_api
from tests.process.test_faults import api, metric
from tests.pure.test_config import ALIAS_BOMB

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


async def _max_latency(listen: str, until: asyncio.Event) -> float:
    """The slowest /healthz answer while `until` is not set: how long the loop was held."""
    from aiohttp import ClientSession, ClientTimeout

    worst = 0.0
    async with ClientSession(timeout=ClientTimeout(total=30)) as http:
        while not until.is_set():
            started = time.monotonic()
            async with http.get(f"http://{listen}/healthz") as r:
                await r.read()
            worst = max(worst, time.monotonic() - started)
            await asyncio.sleep(0.01)
    return worst


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# finding 4: a reload can freeze the plugin
@pytest.mark.parametrize("how", ["sighup", "api"])
@pytest.mark.parametrize("content", ["alias bomb", "20 MB"])
async def test_a_hostile_config_file_is_refused_at_once_and_freezes_nothing(
    exabgp, health_server, plugin_config, how, content
):
    config = plugin_config(health_server.url)
    fake = exabgp(config)
    await fake.start()
    await fake.wait_rib(lambda rib: VIP in rib)
    listen = config["api"]["listen"]
    await wait_for_api(listen)
    assert fake.process is not None
    before = _peak_rss_mb(fake.process.pid)
    if content == "alias bomb":
        fake.config_path.write_text(ALIAS_BOMB)
        assert len(ALIAS_BOMB) < 1000
    else:
        fake.config_path.write_text("# padding\n" * 2_000_000)
    done = asyncio.Event()
    watching = asyncio.create_task(_max_latency(listen, done))
    started = time.monotonic()
    if how == "api":
        status, body = await api(config, "POST", "/v1/reload")
        assert status == 400 and ("expands to more than" in body or "larger than" in body), body
    else:
        fake.signal(signal.SIGHUP)
        while True:
            _, metrics = await api(config, "GET", "/metrics")
            if metric(metrics, "announcer_config_last_reload_successful") == 0:
                break
            assert time.monotonic() - started < 5, "the reload was never refused"
            await asyncio.sleep(0.02)
    refused_after = time.monotonic() - started
    done.set()
    worst = await watching
    assert refused_after < 1.0
    assert worst < 0.5, f"the API waited {worst:.2f} s: the event loop was held"
    assert _peak_rss_mb(fake.process.pid) < before + 100
    assert VIP in fake.announced() and fake.process.returncode is None


# finding 5: a drain that is not saved says it is
async def test_a_drain_that_cannot_be_saved_says_so(exabgp, health_server, plugin_config, tmp_path):
    config = plugin_config(health_server.url)
    config["drain"]["state_file"] = str(tmp_path / "missing-folder" / "drains.json")
    fake = exabgp(config)
    await fake.start()
    await fake.wait_rib(lambda rib: VIP in rib)
    _, metrics = await api(config, "GET", "/metrics")
    assert metric(metrics, "announcer_drain_state_saved") == 1
    status, body = await api(config, "POST", "/v1/drain", {"vips": [VIP]})
    answer = json.loads(body)
    assert status == 200 and answer["persisted"] is False, answer
    assert "kept in memory only" in answer["warning"] and "missing-folder" in answer["warning"]
    await fake.wait_rib(lambda rib: VIP not in rib)  # the drain is in force all the same
    _, metrics = await api(config, "GET", "/metrics")
    assert metric(metrics, "announcer_drain_state_saved") == 0
    assert (await _status(config))["drain_state"]["saved"] is False
    # the folder appears: the next change is saved, and says so
    (tmp_path / "missing-folder").mkdir()
    assert (await api(config, "POST", "/v1/undrain", {"vips": [VIP]}))[0] == 200
    status, body = await api(config, "POST", "/v1/drain", {"vips": [VIP], "reason": "again"})
    assert json.loads(body)["persisted"] is True and "warning" not in json.loads(body)
    saved = json.loads((tmp_path / "missing-folder" / "drains.json").read_text())
    assert saved[VIP]["reason"] == "again"
    _, metrics = await api(config, "GET", "/metrics")
    assert metric(metrics, "announcer_drain_state_saved") == 1


# finding 6: a rotated token is picked up by a reload; an unsafe one is refused
async def test_a_reload_rereads_the_api_token(exabgp, health_server, plugin_config, tmp_path):
    from aiohttp import ClientSession

    token = tmp_path / "token"
    token.touch(mode=0o600)
    token.write_text("first-token-0123456789\n")
    config = plugin_config(health_server.url)
    config["api"]["token_file"] = str(token)
    fake = exabgp(config)
    await fake.start()
    await fake.wait_rib(lambda rib: VIP in rib)
    base = f"http://{config['api']['listen']}"
    await wait_for_api(config["api"]["listen"])

    async def post(path: str, bearer: str) -> int:
        headers = {"Authorization": f"Bearer {bearer}"}
        async with ClientSession() as http, http.post(base + path, headers=headers) as r:
            return r.status

    token.write_text("second-token-0123456789\n")
    assert await post("/v1/reload", "first-token-0123456789") == 200
    assert await post("/v1/undrain", "first-token-0123456789") == 401
    assert await post("/v1/undrain", "second-token-0123456789") == 200
    token.write_text("short\n")
    assert await post("/v1/reload", "second-token-0123456789") == 400
    assert await post("/v1/undrain", "second-token-0123456789") == 200  # the old one stays


# finding 7: the API from the first moment
async def test_status_asked_the_moment_the_plugin_starts_is_never_refused(
    exabgp, health_server, plugin_config, tmp_path
):
    config = plugin_config(health_server.url)
    # a check whose first verdict takes a second: the plugin has decided nothing until then
    slow = tmp_path / "slow-check"
    slow.write_text("#!/bin/sh\nsleep 1\n")
    slow.chmod(0o755)
    config["checks"]["slow"] = {
        "exec": {"argv": [str(slow)]},
        "interval": "5s",
        "timeout": "3s",
        "rise": 1,
    }
    config["vips"][0]["checks"].append("slow")
    host, port = config["api"]["listen"].rsplit(":", 1)
    fake = exabgp(config)
    await fake.start()
    answers: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(answers) < 100:
        try:
            reader, writer = await asyncio.open_connection(host, int(port))
        except ConnectionRefusedError:
            # only while the process is still loading Python: the socket is bound first thing
            assert not answers, "refused after the API had answered"
            assert time.monotonic() < deadline, "the API never listened"
            await asyncio.sleep(0.001)
            continue
        writer.write(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await reader.read()
        assert answer, f"closed without an answer after {len(answers)}"
        answers.append(answer)
        writer.close()
    # the first answers come before any decision: 503, with what is pending
    first = answers[0]
    assert first.startswith(b"HTTP/1.1 503"), first
    progress = json.loads(first.split(b"\r\n\r\n", 1)[1])
    assert progress["starting"] is True and progress["pending"]["vips_undecided"] == 1
    assert all(a.startswith((b"HTTP/1.1 503", b"HTTP/1.1 200")) for a in answers)
    # and the CLI: waits through `starting`, then prints the status
    status = await _cli(config, "status")
    assert status.returncode == 0 and VIP in status.stdout, status.stdout + status.stderr


async def _cli(config: dict, *args: str):
    import subprocess
    import sys

    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "announcer", *args, "--api", f"http://{config['api']['listen']}"],
        capture_output=True,
        text=True,
        check=False,
    )


HEALTH_SERVER = """
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Health(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


# finding 3: the API never closed idle connections
async def test_thousands_of_idle_api_connections_starve_nothing(exabgp, plugin_config):
    import subprocess
    import sys

    # the health endpoint in a process of its own: this test's event loop is busy opening
    # thousands of connections and must not be what makes a probe time out (a thread of this
    # process would wait for the GIL)
    server = subprocess.Popen(
        [sys.executable, "-c", HEALTH_SERVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/health"
        await _hold_idle_connections(exabgp, plugin_config(url, vips=[VIP, VIP2]))
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


async def _hold_idle_connections(exabgp, config: dict) -> None:
    import resource

    config["checks"]["true"] = {
        "exec": {"argv": ["/bin/true"]},
        "interval": "300ms",
        "timeout": "250ms",
    }
    config["vips"][1]["checks"] = ["true"]  # an exec check needs descriptors for its pipes
    host, port = config["api"]["listen"].rsplit(":", 1)
    fake = exabgp(config)
    await fake.start(nofile=512)
    await fake.wait_rib(lambda rib: {VIP, VIP2} <= set(rib))
    await wait_for_api(config["api"]["listen"])
    sent_before = len(fake.commands)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 5000
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted + 500), hard))
    held: list[asyncio.StreamWriter] = []
    try:
        for _ in range(0, wanted, 250):
            opened = await asyncio.gather(
                *(asyncio.open_connection(host, int(port)) for _i in range(250)),
                return_exceptions=True,
            )
            held += [pair[1] for pair in opened if isinstance(pair, tuple)]
        assert len(held) >= 4500, len(held)  # the kernel accepted them: the plugin must cope
        await asyncio.sleep(1.5)  # held idle, while every check runs on
        status = await _cli(config, "status")
        assert status.returncode == 0 and VIP2 in status.stdout, status.stderr
        assert {VIP, VIP2} <= fake.announced()
        assert not any(c.line.startswith("withdraw") for c in fake.commands[sent_before:])
        assert fake.process is not None and fake.process.returncode is None
    finally:
        for writer in held:
            writer.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
