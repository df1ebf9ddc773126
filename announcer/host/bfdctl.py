"""FRR bfdd's control socket (`bfdd --bfdctl PATH`): BFD state changes pushed the moment they
happen, instead of read by polling.

The protocol (FRR bfdd/bfdctl.h, bfdd/control.c; checked against bfdd 8.4): every message is
an 8-byte header, `length` (u32, network order, the payload's), `id` (u16), `type` (u8) and
`version` (u8, 1), then a JSON payload. A client sends `BMT_NOTIFY` (4) with an 8-byte mask of
what it wants to hear (host byte order; bit 0: peer state); bfdd answers `BMT_RESPONSE` (1)
`{"status": "ok"}`, then sends the state of every session at once, and one `BMT_NOTIFY` per
change from then on: `{"op": "status", "peer-address": ..., "state": "up" | "down" | "init" |
"adm-down", ...}`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..core.errors import AnnouncerError

__all__ = [
    "BfdNotice",
    "BfdctlError",
    "decode_messages",
    "follow",
    "normalise_peer",
    "subscribe_message",
]

HEADER = struct.Struct("!IHBB")
VERSION = 1
MSG_RESPONSE = 1
MSG_NOTIFY = 4
NOTIFY_PEER_STATE = 1
MAX_MESSAGE_BYTES = 64 * 1024  # a notice is ~300 bytes: anything far larger is not bfdd


class BfdctlError(AnnouncerError):
    """bfdd refused, or spoke something that is not its control protocol."""


@dataclass(frozen=True, slots=True)
class BfdNotice:
    peer: str  # normalised address
    state: str  # up | down | init | adm-down


def normalise_peer(address: str) -> str:
    """One spelling per address, so that bfdd's and the configuration's compare."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


def subscribe_message(request_id: int = 1) -> bytes:
    mask = struct.pack("=Q", NOTIFY_PEER_STATE)
    return HEADER.pack(len(mask), request_id, MSG_NOTIFY, VERSION) + mask


def decode_messages(buffer: bytearray) -> list[tuple[int, dict[str, object]]]:
    """Take every whole message off the front of `buffer`: (type, payload)."""
    messages: list[tuple[int, dict[str, object]]] = []
    while len(buffer) >= HEADER.size:
        length, _, kind, version = HEADER.unpack_from(buffer)
        if version != VERSION or length > MAX_MESSAGE_BYTES:
            raise BfdctlError(f"not bfdd's control protocol (version {version}, {length} bytes)")
        if len(buffer) < HEADER.size + length:
            break
        raw = bytes(buffer[HEADER.size : HEADER.size + length])
        del buffer[: HEADER.size + length]
        try:
            payload = json.loads(raw.rstrip(b"\0") or b"{}")
        except ValueError as exc:
            raise BfdctlError(f"bfdd sent a payload that is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise BfdctlError("bfdd sent a payload that is not a JSON object")
        messages.append((kind, payload))
    return messages


def _notice(payload: dict[str, object]) -> BfdNotice | None:
    peer, state = payload.get("peer-address"), payload.get("state")
    if payload.get("op") != "status" or not isinstance(peer, str) or not isinstance(state, str):
        return None
    return BfdNotice(normalise_peer(peer), state)


async def follow(path: str, on_notice: Callable[[BfdNotice], None], timeout_s: float) -> None:
    """Subscribe on bfdd's control socket and pass on every state notice until bfdd closes
    the connection (returns) or it fails (OSError, BfdctlError). The subscription's answer
    must come within `timeout_s`."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout_s)
    try:
        writer.write(subscribe_message())
        await writer.drain()
        buffer = bytearray()
        subscribed = False
        while True:
            read = reader.read(65536)
            data = await (read if subscribed else asyncio.wait_for(read, timeout_s))
            if not data:
                return
            buffer += data
            for kind, payload in decode_messages(buffer):
                if kind == MSG_RESPONSE:
                    if payload.get("status") != "ok":
                        raise BfdctlError(f"bfdd refused the subscription: {payload}")
                    subscribed = True
                elif kind == MSG_NOTIFY and (notice := _notice(payload)) is not None:
                    on_notice(notice)
    finally:
        writer.close()
