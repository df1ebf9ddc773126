"""Every probe against a real local server or process."""

import asyncio
import contextlib
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web

from healthchecks import (
    ExecProbe,
    ExecProbeConfig,
    HaproxyProbe,
    HaproxyProbeConfig,
    HttpProbe,
    HttpProbeConfig,
    NginxProbe,
    NginxProbeConfig,
    ProbeResult,
    TcpProbe,
    TcpProbeConfig,
    run_probe,
)
from healthchecks.haproxy_probe import backend_health, parse_show_stat
from healthchecks.nginx_probe import parse_stub_status

SHOW_STAT = (Path(__file__).parent / "data" / "haproxy-show-stat.csv").read_text()
STUB_STATUS = (
    "Active connections: 3 \nserver accepts handled requests\n 120 118 400 \n"
    "Reading: 0 Writing: 1 Waiting: 2 \n"
)


@pytest.fixture
async def http_server():
    hits = {"host": None}

    async def health(request):
        hits["host"] = request.headers.get("Host")
        return web.Response(text="status: ok\n")

    async def broken(request):
        return web.Response(status=500, text="boom")

    async def slow(request):
        await asyncio.sleep(1.5)
        return web.Response(text="ok")

    async def stub(request):
        return web.Response(text=STUB_STATUS)

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/broken", broken)
    app.router.add_get("/slow", slow)
    app.router.add_get("/nginx_status", stub)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", hits
    await runner.cleanup()


async def probe_once(probe, timeout=1.0):
    try:
        return await run_probe(probe, timeout)
    finally:
        await probe.close()


async def test_http_ok_with_host_header(http_server):
    base, hits = http_server
    config = HttpProbeConfig(url=f"{base}/health", host="www.example.com", expect_body="ok")
    result = await probe_once(HttpProbe(config))
    assert result.ok and result.reason == "ok"
    assert hits["host"] == "www.example.com"
    assert result.duration_s > 0


async def test_http_bad_status(http_server):
    base, _ = http_server
    result = await probe_once(HttpProbe(HttpProbeConfig(url=f"{base}/broken")))
    assert not result.ok and result.reason == "bad_status" and "500" in result.detail


async def test_http_expected_status_set(http_server):
    base, _ = http_server
    config = HttpProbeConfig(url=f"{base}/broken", expect_status=[500, 503])
    assert (await probe_once(HttpProbe(config))).ok


async def test_http_body_substring_and_regex(http_server):
    base, _ = http_server
    assert not (
        await probe_once(HttpProbe(HttpProbeConfig(url=f"{base}/health", expect_body="nope")))
    ).ok
    regex = HttpProbeConfig(url=f"{base}/health", expect_body_regex=r"^status: (ok|fine)$")
    assert (await probe_once(HttpProbe(regex))).ok
    wrong = HttpProbeConfig(url=f"{base}/health", expect_body_regex=r"^fine")
    assert (await probe_once(HttpProbe(wrong))).reason == "body_mismatch"


async def test_http_timeout_is_its_own_reason(http_server):
    base, _ = http_server
    result = await probe_once(HttpProbe(HttpProbeConfig(url=f"{base}/slow")), timeout=0.2)
    assert not result.ok and result.reason == "timeout"
    assert result.duration_s < 1.0


class _Hangs:
    """A probe that never answers (a stand-in for any hung probe)."""

    async def probe(self):
        await asyncio.Event().wait()

    async def close(self):
        pass


class _Answers:
    async def probe(self):
        await asyncio.sleep(0)
        return ProbeResult(ok=True, reason="ok")

    async def close(self):
        pass


async def test_a_timed_out_probe_leaves_its_task_free_to_go_on():
    """The deadline cancels the probe, not the runner: the same task probes again, sleeps and
    waits as before (a cancellation left pending would end the runner at its next await)."""
    for _ in range(3):
        result = await run_probe(_Hangs(), 0.02)
        assert not result.ok and result.reason == "timeout"
        assert result.detail == "no answer within 0.02s"
    assert (await run_probe(_Answers(), 0.02)).ok
    await asyncio.sleep(0.05)  # past the answered probe's deadline: its clock was stopped
    assert (await asyncio.wait_for(asyncio.sleep(0, result="awake"), 1.0)) == "awake"


async def test_cancelling_the_runner_is_not_taken_for_a_timeout():
    """A reload that removes a check cancels its runner mid-probe: that must end the runner,
    not come back as a failed probe."""
    task = asyncio.create_task(run_probe(_Hangs(), 5.0))
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelled_as_the_deadline_passes_the_runner_still_ends():
    """The deadline and a cancellation from outside in the same instant: the outside one wins."""

    async def run():
        return await run_probe(_Hangs(), 0.05)

    task = asyncio.create_task(run())
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_http_connection_refused(unused_tcp_port):
    config = HttpProbeConfig(url=f"http://127.0.0.1:{unused_tcp_port}/")
    result = await probe_once(HttpProbe(config))
    assert not result.ok and result.reason == "connection_refused"


async def test_http_sees_a_dead_listener_on_the_next_probe():
    """A stopped server fails the very next probe: its kept connection ended with it, and the
    new one is refused."""
    held: list[asyncio.StreamWriter] = []

    async def serve(reader, writer):
        held.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = HttpProbe(HttpProbeConfig(url=f"http://127.0.0.1:{port}/health"))
    try:
        assert (await run_probe(probe, 1.0)).ok
        assert (await run_probe(probe, 1.0)).ok
        assert len(held) == 1  # the second probe went over the kept connection
        server.close()
        for writer in held:
            writer.close()
        await server.wait_closed()
        result = await run_probe(probe, 1.0)
        assert not result.ok and result.reason == "connection_refused"
    finally:
        await probe.close()


async def test_tcp_connect_and_expect():
    async def serve(reader, writer):
        data = await reader.readline()
        writer.write(b"+PONG\r\n" if data == b"PING\r\n" else b"-ERR\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert (await probe_once(TcpProbe(TcpProbeConfig(port=port)))).ok
        good = TcpProbeConfig(port=port, send="PING\r\n", expect="+PONG")
        assert (await probe_once(TcpProbe(good))).ok
        bad = TcpProbeConfig(port=port, send="HELLO\r\n", expect="+PONG")
        assert (await probe_once(TcpProbe(bad))).reason == "body_mismatch"


async def test_tcp_refused(unused_tcp_port):
    result = await probe_once(TcpProbe(TcpProbeConfig(port=unused_tcp_port)))
    assert result.reason == "connection_refused"


async def test_exec_exit_status():
    ok = await probe_once(ExecProbe(ExecProbeConfig(argv=[sys.executable, "-c", "print('fine')"])))
    assert ok.ok and ok.detail == "fine"
    bad = await probe_once(
        ExecProbe(ExecProbeConfig(argv=[sys.executable, "-c", "raise SystemExit(3)"]))
    )
    assert not bad.ok and bad.reason == "exit_nonzero" and "exit 3" in bad.detail


async def test_exec_never_uses_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    argv = ["/bin/echo", f"; touch {marker}"]
    assert (await probe_once(ExecProbe(ExecProbeConfig(argv=argv)))).ok
    assert not marker.exists()


async def test_exec_missing_program():
    result = await probe_once(ExecProbe(ExecProbeConfig(argv=["/nonexistent/check"])))
    assert result.reason == "exec_not_found"


async def test_exec_timeout_kills_the_whole_process_group(tmp_path):
    """The grandchild keeps stdout open: the probe must still end at its deadline, and the
    grandchild must die with the group (not live on for its 300 s)."""
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen(['sleep', '300'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(300)\n"
    )
    started = time.monotonic()
    result = await probe_once(ExecProbe(ExecProbeConfig(argv=[sys.executable, "-c", script])), 1.0)
    took = time.monotonic() - started
    assert result.reason == "timeout"
    assert took < 3.0, f"the probe took {took:.1f}s with a 1s timeout"
    grandchild = int(pidfile.read_text())
    await asyncio.sleep(0.2)
    assert not _alive(grandchild)


async def test_exec_child_that_exits_while_a_grandchild_holds_stdout(tmp_path):
    """The check's own exit status decides, at once; a daemonised helper it started cannot
    hold the probe until the timeout."""
    script = "import subprocess; subprocess.Popen(['sleep', '300']); print('fine')"
    started = time.monotonic()
    result = await probe_once(ExecProbe(ExecProbeConfig(argv=[sys.executable, "-c", script])), 5.0)
    assert result.ok and result.detail == "fine"
    assert time.monotonic() - started < 2.0


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_parse_show_stat_recorded():
    rows = parse_show_stat(SHOW_STAT)
    health = backend_health(rows, "web")
    assert (health.up, health.total, health.current_sessions) == (2, 4, 7)


@pytest.fixture
async def haproxy_socket(tmp_path):
    """A UNIX socket answering `show stat` like HAProxy's runtime API."""
    state = {"reply": SHOW_STAT}

    async def serve(reader, writer):
        command = await reader.readline()
        writer.write(state["reply"].encode() if command == b"show stat\n" else b"Unknown command\n")
        await writer.drain()
        writer.close()

    path = str(tmp_path / "admin.sock")
    server = await asyncio.start_unix_server(serve, path)
    async with server:
        yield path, state


async def test_haproxy_min_up_and_capacity(haproxy_socket):
    path, _ = haproxy_socket
    result = await probe_once(
        HaproxyProbe(HaproxyProbeConfig(socket=path, backend="web", frontend="www", min_up=2))
    )
    assert result.ok and result.capacity == 0.5
    assert result.metrics["active_connections"] == 7
    too_many = HaproxyProbeConfig(socket=path, backend="web", min_up=3)
    result = await probe_once(HaproxyProbe(too_many))
    assert not result.ok and result.reason == "below_min_up"
    ratio = HaproxyProbeConfig(socket=path, backend="web", min_up_ratio=0.75)
    assert (await probe_once(HaproxyProbe(ratio))).reason == "below_min_up"


async def test_haproxy_frontend_stopped_and_backend_missing(haproxy_socket):
    path, state = haproxy_socket
    state["reply"] = SHOW_STAT.replace(",OPEN,", ",STOP,")
    result = await probe_once(
        HaproxyProbe(HaproxyProbeConfig(socket=path, backend="web", frontend="www"))
    )
    assert result.reason == "frontend_closed"
    result = await probe_once(HaproxyProbe(HaproxyProbeConfig(socket=path, backend="api")))
    assert result.reason == "backend_missing"


async def test_haproxy_socket_missing(tmp_path):
    config = HaproxyProbeConfig(socket=str(tmp_path / "none.sock"), backend="web")
    assert (await probe_once(HaproxyProbe(config))).reason == "socket_missing"


def test_parse_stub_status():
    status = parse_stub_status(STUB_STATUS)
    assert (status.active, status.accepts, status.handled, status.waiting) == (3, 120, 118, 2)


async def test_nginx_stub_status(http_server):
    base, _ = http_server
    result = await probe_once(NginxProbe(NginxProbeConfig(url=f"{base}/nginx_status")))
    assert result.ok and result.metrics["active_connections"] == 3
    result = await probe_once(NginxProbe(NginxProbeConfig(url=f"{base}/health")))
    assert result.reason == "bad_reply"


async def _stop_and_see_it(server, connections, seen: asyncio.Event) -> None:
    """Stop the way a server does (listener, then its connections); the watcher must see it."""
    server.close()
    for writer in connections:
        writer.close()
    async with asyncio.timeout(2):
        await seen.wait()


async def _end(watcher: asyncio.Task, server) -> None:
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    await server.wait_closed()


async def test_watcher_reports_a_server_that_goes_away():
    from healthchecks import Endpoint, Watcher

    lost = asyncio.Event()
    clients: list[asyncio.StreamWriter] = []

    async def hold(reader, writer):
        clients.append(writer)
        await reader.read()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    watcher = Watcher(Endpoint("127.0.0.1", port), lost.set, 1.0)
    task = asyncio.create_task(watcher.run())
    try:
        async with asyncio.timeout(5):
            while not clients:
                await asyncio.sleep(0.01)
        assert not lost.is_set() and not watcher.listener_gone
        await _stop_and_see_it(server, clients, lost)
        assert watcher.listener_gone
        # the service comes back on the same port: seen within a few retries, and the
        # watcher no longer says the listener is gone
        lost.clear()
        server = await asyncio.start_server(hold, "127.0.0.1", port)
        back_at = time.monotonic()
        async with asyncio.timeout(2):
            await lost.wait()
        assert time.monotonic() - back_at < 0.5
        assert not watcher.listener_gone
    finally:
        server.close()
        for writer in clients:
            writer.close()
        await _end(task, server)


async def _watched_server(handler, path: str, on_change):
    """A local HTTP server, and a watcher of it running: (server, port, watcher, task)."""
    from healthchecks import Endpoint, Watcher

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    watcher = Watcher(Endpoint("127.0.0.1", port, http_path=path), on_change, 1.0)
    return server, port, watcher, asyncio.create_task(watcher.run())


def _answer_and_hold(held: list, requests: list | None = None):
    """A server's handler: answer one request, keep the connection (an idle keep-alive one)."""

    async def serve(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        if requests is not None:
            requests.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        held.append(writer)
        await reader.read()

    return serve


async def test_watcher_tells_a_reload_from_a_stop():
    """Old workers closing their idle connections while the listener stays (a reload) wake
    nothing; the listener going away (a stop) does. HTTP: the held connection is a real idle
    keep-alive one, which retiring nginx and HAProxy workers close at once."""
    from healthchecks import Endpoint, Watcher

    woken = asyncio.Event()
    requests: list[bytes] = []
    held: list[asyncio.StreamWriter] = []

    server = await asyncio.start_server(_answer_and_hold(held, requests), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    watcher = asyncio.create_task(
        Watcher(Endpoint("127.0.0.1", port, http_path="/health"), woken.set, 1.0).run()
    )
    try:
        for reloads in range(3):
            async with asyncio.timeout(5):
                while len(held) <= reloads:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(1.1)  # an idle connection, as long-lived as a real one
            held[reloads].close()  # an old worker retires; the listener stays
        async with asyncio.timeout(5):
            while len(held) < 4:
                await asyncio.sleep(0.01)
        assert not woken.is_set()
        assert requests[0].startswith(b"HEAD /health HTTP/1.1\r\n")
        await _stop_and_see_it(server, held[-1:], woken)
    finally:
        await _end(watcher, server)


async def test_watcher_counts_an_accepted_but_unanswered_reconnect_as_a_stop():
    """nginx's master after SIGTERM: its workers have gone (the held connection closes) but
    its listening socket lingers a moment, so a reconnect is accepted, then reset unanswered.
    That is a stop, and must wake the checks at once, not be taken for a reload."""

    woken = asyncio.Event()
    held: list[asyncio.StreamWriter] = []
    dying = False

    answer = _answer_and_hold(held)

    async def serve(reader, writer):
        if dying:  # accepted by the kernel, never answered: closed
            writer.transport.abort()
            return
        await answer(reader, writer)

    server, _port, watcher, task = await _watched_server(serve, "/health", woken.set)
    try:
        async with asyncio.timeout(5):
            while not held:
                await asyncio.sleep(0.01)
        await asyncio.sleep(1.1)
        dying = True
        held[0].close()  # the workers exit; the listener is still there
        async with asyncio.timeout(0.5):
            await woken.wait()
        assert watcher.listener_gone
    finally:
        server.close()
        await _end(task, server)


def test_watch_endpoints():
    from healthchecks import endpoint_of

    assert str(endpoint_of(HttpProbeConfig(url="https://127.0.0.1/x"))) == "127.0.0.1:443"
    assert str(endpoint_of(TcpProbeConfig(host="::1", port=25))) == "::1:25"
    assert endpoint_of(HaproxyProbeConfig(socket="/run/h.sock", backend="b")).path == "/run/h.sock"
    assert endpoint_of(ExecProbeConfig(argv=["/bin/true"])) is None


async def test_haproxy_frontend_at_maxconn_is_up_with_no_spare_capacity(haproxy_socket):
    """FULL is a busy frontend, not a dead one: a host must not withdraw at peak load."""
    path, state = haproxy_socket
    state["reply"] = SHOW_STAT.replace(",OPEN,", ",FULL,")
    result = await probe_once(
        HaproxyProbe(HaproxyProbeConfig(socket=path, backend="web", frontend="www", min_up=2))
    )
    assert result.ok, result
    assert result.capacity == 0.0


async def test_http_probes_keep_one_connection_and_survive_the_server_closing_it():
    """By default a probe reuses its connection (no connect/accept/close per probe). When the
    server closes it between probes (a reload's old worker, keepalive_requests) or answers
    `Connection: close`, the next probe connects afresh and passes; with reuse_connections
    off, every probe has its own connection."""
    connections: list[asyncio.StreamWriter] = []
    served = 0

    async def serve(reader, writer):
        nonlocal served
        connections.append(writer)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                served += 1
                close = served % 4 == 0
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                    + (b"Connection: close\r\n" if close else b"")
                    + b"\r\nok\n"
                )
                await writer.drain()
                if close:
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/health"
    probe = HttpProbe(HttpProbeConfig(url=url))
    try:
        for _ in range(3):
            assert (await run_probe(probe, 1.0)).ok
        assert len(connections) == 1  # three probes, one connection
        assert (await run_probe(probe, 1.0)).ok  # answered with Connection: close
        assert (await run_probe(probe, 1.0)).ok
        assert len(connections) == 2
        connections[-1].close()  # the server drops the idle connection between probes
        await asyncio.sleep(0.05)
        assert (await run_probe(probe, 1.0)).ok
        assert len(connections) == 3
        await probe.close()
        fresh = HttpProbe(HttpProbeConfig(url=url, reuse_connections=False))
        before = len(connections)
        for _ in range(3):
            assert (await run_probe(fresh, 1.0)).ok
        assert len(connections) == before + 3
        await fresh.close()
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()


async def test_a_kept_connection_closed_as_the_request_goes_out_is_retried_once():
    """The server closes the idle connection just as the next request arrives (it read nothing
    of it): a GET is sent again on a new connection, not reported as a failure."""
    connections = 0

    async def serve(reader, writer):
        nonlocal connections
        connections += 1
        first = connections == 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
        await writer.drain()
        if first:
            # wait for the second request, then drop the connection without answering it
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await reader.readuntil(b"\r\n\r\n")
            writer.transport.abort()
            return
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = HttpProbe(HttpProbeConfig(url=f"http://127.0.0.1:{port}/"))
    try:
        assert (await run_probe(probe, 1.0)).ok
        result = await run_probe(probe, 1.0)
        assert result.ok, result
        assert connections == 2
    finally:
        await probe.close()
        server.close()
        await server.wait_closed()


async def test_a_watcher_survives_an_unexpected_error():
    """Whatever goes wrong inside a watch, the watcher starts over: one that died quietly would
    leave its checks to the probe interval (a failover ten times slower) with nothing said."""

    calls: list[float] = []
    held: list[asyncio.StreamWriter] = []

    def on_change() -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise RuntimeError("a bug in a callback")

    server, port, _watcher, task = await _watched_server(_answer_and_hold(held), "/", on_change)
    try:
        for stop in range(2):  # the first stop's callback raises; the second must be seen too
            async with asyncio.timeout(5):
                while len(held) <= stop:
                    await asyncio.sleep(0.01)
            await asyncio.sleep(1.1)
            seen = len(calls)
            server.close()
            held[stop].close()
            async with asyncio.timeout(2):
                while len(calls) <= seen:
                    await asyncio.sleep(0.01)
            server = await asyncio.start_server(_answer_and_hold(held), "127.0.0.1", port)
        assert not task.done()
    finally:
        server.close()
        for writer in held:
            writer.close()
        await _end(task, server)


async def test_uvloops_runtime_error_on_a_reset_connection_counts_as_unserved(monkeypatch):
    """uvloop raises RuntimeError, not an OSError, when the watcher writes its HEAD to a
    connection the dying server has already reset: that is a stop like any refusal."""
    from healthchecks import Endpoint, watch

    async def reset(*args):
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    monkeypatch.setattr(watch, "_keep_alive", reset)
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(OSError):
            await watch._connect(Endpoint("127.0.0.1", port, http_path="/"))
    finally:
        server.close()
        await server.wait_closed()


async def test_a_server_without_keep_alive_gets_a_bare_connection():
    """A server that closes every kept-alive connection at once (nginx `keepalive_timeout 0`):
    after a few tries the watcher holds a connection that sends nothing, which such a server
    keeps open; a stop is still seen. One short connection alone (a quick second reload) does
    not switch."""

    woken = asyncio.Event()
    requests: list[bytes] = []
    bare: list[asyncio.StreamWriter] = []

    async def serve(reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 0.5)
        except TimeoutError:
            bare.append(writer)  # sent nothing: held open, as nginx until its header timeout
            await reader.read()
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        requests.append(head)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server, _port, _watcher, task = await _watched_server(serve, "/health", woken.set)
    try:
        async with asyncio.timeout(10):
            while not bare:
                await asyncio.sleep(0.01)
        assert len(requests) >= 3
        assert not woken.is_set()
        await _stop_and_see_it(server, bare, woken)
    finally:
        server.close()
        await _end(task, server)
