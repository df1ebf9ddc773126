"""One command on an FRR daemon's vty socket: what `vtysh -c` does, without starting vtysh.

vtysh talks to each daemon over a UNIX socket, `<vty_socket folder>/<daemon>.vty`: it sends a
command as text ending in a NUL byte, and the daemon answers with the command's output, then
three NUL bytes and a status byte (0: success). vtysh sends `enable` first, and some `show`
commands (bfdd's among them) exist only after it; so does this client.

Starting vtysh costs about 20 ms of CPU (it loads its libraries and rewrites its history
file); this costs a tenth of a millisecond. The socket is the one vtysh uses, with the same
permissions (group frrvty).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

__all__ = ["MAX_ANSWER_BYTES", "VtyError", "vty_command"]

MAX_ANSWER_BYTES = 4 * 1024 * 1024
_END = b"\0\0\0"


class VtyError(OSError):
    """The daemon refused the command, or did not answer as a vty does."""


async def vty_command(folder: str, daemon: str, command: str, timeout_s: float) -> str:
    """The output of `command` on `daemon` (bfdd, bgpd...) whose vty socket is in `folder`.
    Raises OSError (VtyError included) when the daemon cannot be reached or refuses it, and
    TimeoutError after `timeout_s`."""
    if not command.isprintable():
        raise ValueError(f"{command!r}: control characters in a vty command")
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_unix_connection(str(Path(folder) / f"{daemon}.vty"))
        try:
            await _exchange(reader, writer, "enable")
            return await _exchange(reader, writer, command)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: str
) -> str:
    writer.write(command.encode() + b"\0")
    await writer.drain()
    answer = bytearray()
    while not (len(answer) >= 4 and answer[-4:-1] == _END):
        chunk = await reader.read(65536)
        if not chunk:
            raise VtyError(f"{command!r}: the daemon closed the connection before its answer ended")
        answer += chunk
        if len(answer) > MAX_ANSWER_BYTES:
            raise VtyError(f"{command!r}: an answer of more than {MAX_ANSWER_BYTES} bytes")
    status = answer[-1]
    output = answer[:-4].decode(errors="replace")
    if status != 0:
        raise VtyError(f"{command!r}: status {status}: {output.strip()[:200]}")
    return output
