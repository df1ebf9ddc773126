from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from aiohttp import web

from tests.fakes import FakeExabgp, fast_http_check, write_config


class Switchable:
    """A local HTTP health endpoint whose answer a test can change (and that can stop)."""

    def __init__(self) -> None:
        self.status = 200
        self.hang = False
        self.alternate = False  # 200, 500, 200, 500...: a check that never settles
        self._served = 0
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def _health(self, request: web.Request) -> web.Response:
        if self.hang:
            await asyncio.sleep(3600)
        self._served += 1
        status = (200 if self._served % 2 else 500) if self.alternate else self.status
        return web.Response(status=status, text="ok" if status == 200 else "fail")

    async def start(self, port: int = 0) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port or self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"


@pytest.fixture
async def health_server() -> AsyncIterator[Switchable]:
    server = Switchable()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def plugin_config(tmp_path, unused_tcp_port_factory) -> Callable[..., dict]:
    def make(url: str, vips: list[str] | None = None, **check: object) -> dict:
        return {
            "checks": {"web": fast_http_check(url, **check)},
            "vips": [{"prefix": p, "checks": ["web"]} for p in (vips or ["192.0.2.10/32"])],
            "drain": {"gshut_period": 0},
            "api": {"listen": f"127.0.0.1:{unused_tcp_port_factory()}"},
            # this machine does not hold the VIPs: the guard is tested on its own
            "addresses": {"mode": "ignore"},
        }

    return make


@pytest.fixture
async def exabgp(tmp_path) -> AsyncIterator[Callable[..., FakeExabgp]]:
    """Fake ExaBGPs running `announcer run` on a config written from a dict; stopped after."""
    fakes: list[FakeExabgp] = []

    def make(config: dict, **kwargs) -> FakeExabgp:
        fake = FakeExabgp(write_config(tmp_path / f"c{len(fakes)}.yaml", config), **kwargs)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        await fake.stop()
