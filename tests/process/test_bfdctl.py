"""bfdd's control socket, spoken by a fake bfdd on a real UNIX socket (the real one is met in
the lab): the subscription's bytes, the notices, and the monitor failing closed when bfdd goes
and following it again when it is back."""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

import pytest

from announcer.config import parse_config
from announcer.host.bfd_status import BfdMonitor
from announcer.host.bfdctl import (
    BfdctlError,
    BfdNotice,
    decode_messages,
    follow,
    subscribe_message,
)

R1, R2 = "198.51.100.1", "2001:db8::1"


def message(kind: int, payload: dict, request_id: int = 0) -> bytes:
    body = json.dumps(payload).encode()
    return struct.pack("!IHBB", len(body), request_id, kind, 1) + body


def status(peer: str, state: str) -> bytes:
    return message(4, {"op": "status", "peer-address": peer, "state": state, "id": 7})


class FakeBfdd:
    """Answers the subscription like bfdd 8.4: `ok`, every session's state, then changes."""

    def __init__(self, path: Path, sessions: dict[str, str]) -> None:
        self.path = path
        self.sessions = sessions
        self.received: list[bytes] = []
        self.clients: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._client, str(self.path))

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readexactly(8)
        length = struct.unpack("!I", head[:4])[0]
        self.received.append(head + await reader.readexactly(length))
        writer.write(message(1, {"status": "ok"}, request_id=1))
        for peer, state in self.sessions.items():
            writer.write(status(peer, state))
        self.clients.append(writer)

    def change(self, peer: str, state: str) -> None:
        self.sessions[peer] = state
        for writer in self.clients:
            writer.write(status(peer, state))

    async def stop(self) -> None:
        for writer in self.clients:
            writer.close()
        self.clients.clear()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.path.unlink(missing_ok=True)


def test_the_subscription_is_bfdds_notify_message_for_peer_state():
    # header: length 8, id 1, type BMT_NOTIFY (4), version 1; then the 64-bit mask, host order
    assert subscribe_message() == struct.pack("!IHBB", 8, 1, 4, 1) + struct.pack("=Q", 1)


def test_messages_split_anywhere_are_put_together():
    stream = message(1, {"status": "ok"}) + status(R1, "up") + status(R2, "down")
    buffer, got = bytearray(), []
    for byte in stream:
        buffer.append(byte)
        got += decode_messages(buffer)
    assert [kind for kind, _ in got] == [1, 4, 4] and not buffer
    assert got[2][1]["state"] == "down"
    with pytest.raises(BfdctlError):
        decode_messages(bytearray(struct.pack("!IHBB", 2, 0, 4, 9) + b"{}"))


async def test_follow_passes_on_every_state_until_bfdd_goes(tmp_path):
    bfdd = FakeBfdd(tmp_path / "bfdd.sock", {R1: "up", "2001:0db8:0::1": "init"})
    await bfdd.start()
    notices: list[BfdNotice] = []
    following = asyncio.create_task(follow(str(bfdd.path), notices.append, 1.0))
    while len(notices) < 2:
        await asyncio.sleep(0.01)
    bfdd.change(R1, "down")
    while len(notices) < 3:
        await asyncio.sleep(0.01)
    await bfdd.stop()
    await asyncio.wait_for(following, 1)  # bfdd closed the connection: follow returns
    assert notices == [BfdNotice(R1, "up"), BfdNotice(R2, "init"), BfdNotice(R1, "down")]
    assert bfdd.received == [subscribe_message()]


async def test_the_monitor_fails_closed_while_bfdd_is_gone_and_follows_it_back(tmp_path):
    path = tmp_path / "bfdd.sock"
    config = parse_config(
        {
            "bgp": {
                "local_as": 65001,
                "router_id": "198.51.100.2",
                "neighbors": [
                    {"address": R1, "peer_as": 65000, "bfd": {}},
                    {
                        "address": R2,
                        "peer_as": 65000,
                        "bfd": {},
                        "local_address": "2001:db8::2",
                    },
                ],
            },
            "checks": {"w": {"tcp": {"port": 1}}},
            "vips": [{"prefix": "192.0.2.1/32", "checks": ["w"]}],
            "bfdd": {"control_socket": str(path), "vty_socket": str(tmp_path / "no-vty")},
        }
    )
    published: list[frozenset[str]] = []
    monitor = BfdMonitor(config, published.append)
    assert published == [frozenset()]  # nothing is up until bfdd says so
    bfdd = FakeBfdd(path, {R1: "up", R2: "up"})
    await bfdd.start()
    task = asyncio.create_task(monitor.run())
    try:

        async def until(up: frozenset[str]) -> None:
            async with asyncio.timeout(2):
                while published[-1] != up:
                    await asyncio.sleep(0.01)

        await until(frozenset({R1, R2}))
        assert monitor.via == "control" and monitor.reachable
        bfdd.change(R2, "down")
        await until(frozenset({R1}))
        await bfdd.stop()  # bfdd dies: every peer counts as down at once
        await until(frozenset())
        assert monitor.reachable is False
        bfdd = FakeBfdd(path, {R1: "up", R2: "up"})
        await bfdd.start()  # and is back: followed again within a fraction of a second
        await until(frozenset({R1, R2}))
    finally:
        task.cancel()
        await bfdd.stop()
