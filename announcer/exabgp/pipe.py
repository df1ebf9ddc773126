"""The pipe to ExaBGP: read stdin without pause, write commands to stdout, match acks.

ExaBGP freezes when a plugin stops reading its stdin, so one task reads every line as it
arrives, whatever else is going on. Acks (`done`/`error`) resolve commands in the order they
were sent; a command whose ack does not come in time is reported as unknown, and its future
stays queued so that a late ack still lines up with the right command.
"""

from __future__ import annotations

import asyncio
import collections
import os
import stat
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import BinaryIO, Protocol

from ..core import Ack, Info, Malformed, NeighborState, RibRoutes, Shutdown, parse_line
from ..logs import get_logger

__all__ = ["AckResult", "ExabgpSession", "LineChannel", "StdioChannel"]

log = get_logger("exabgp")
MAX_LINE_BYTES = 4 * 1024 * 1024


class AckResult(StrEnum):
    DONE = "done"
    ERROR = "error"
    TIMEOUT = "timeout"


class LineChannel(Protocol):
    async def read_line(self) -> str | None:
        """The next line without its newline, or None at end of input."""

    async def write_lines(self, lines: Sequence[str]) -> None: ...

    def close(self) -> None: ...


def _is_stream(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


class StdioChannel:
    """Non-blocking stdin/stdout pipes. stdout is moved to a private descriptor and fd 1 is
    pointed at stderr, so a stray print anywhere in the process cannot reach ExaBGP.

    Regular files (a replayed session: `announcer run < lines > out`) are read and written
    directly: they never block for long."""

    def __init__(
        self,
        reader: asyncio.StreamReader | None,
        writer: asyncio.WriteTransport | None,
        in_file: BinaryIO | None = None,
        out_file: BinaryIO | None = None,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._in_file = in_file
        self._out_file = out_file

    @classmethod
    async def open(cls) -> StdioChannel:
        loop = asyncio.get_running_loop()
        out_fd = os.dup(sys.stdout.fileno())
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        in_fd = sys.stdin.fileno()
        reader = writer = in_file = out_file = None
        if _is_stream(in_fd):
            reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
            await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(in_fd, "rb", 0)
            )
        else:
            in_file = os.fdopen(in_fd, "rb")
        if _is_stream(out_fd):
            writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(out_fd, "wb", 0))
        else:
            out_file = os.fdopen(out_fd, "wb", 0)
        return cls(reader, writer, in_file, out_file)

    async def read_line(self) -> str | None:
        if self._reader is None:
            assert self._in_file is not None
            raw = self._in_file.readline(MAX_LINE_BYTES)
            await asyncio.sleep(0)
            return raw.decode("utf-8", errors="replace").rstrip("\n") if raw else None
        while True:
            try:
                raw = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                return exc.partial.decode("utf-8", errors="replace") if exc.partial else None
            except asyncio.LimitOverrunError as exc:
                # skip an oversized line (a huge received UPDATE) rather than stop reading
                await self._reader.readexactly(exc.consumed)
                log.warning("skipped an over-long line from ExaBGP", extra={"bytes": exc.consumed})
                continue
            return raw.decode("utf-8", errors="replace").rstrip("\n")

    async def write_lines(self, lines: Sequence[str]) -> None:
        data = "".join(f"{line}\n" for line in lines).encode()
        if self._writer is None:
            assert self._out_file is not None
            self._out_file.write(data)
            return
        if self._writer.is_closing():
            raise BrokenPipeError("ExaBGP closed our stdout")
        self._writer.write(data)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._out_file is not None:
            self._out_file.close()


NeighborCallback = Callable[[NeighborState], None]


class ExabgpSession:
    """Speaks the process API over a LineChannel."""

    def __init__(
        self,
        channel: LineChannel,
        *,
        expect_acks: bool,
        ack_timeout_s: float,
        on_neighbor: NeighborCallback | None = None,
        on_line: Callable[[str, str], None] | None = None,
    ) -> None:
        self._channel = channel
        self.expect_acks = expect_acks
        self.ack_timeout_s = ack_timeout_s
        self._on_neighbor = on_neighbor
        self._on_line = on_line or (lambda kind, line: None)
        self._pending: collections.deque[asyncio.Future[bool]] = collections.deque()
        self._send_lock = asyncio.Lock()
        # the answer to `show adj-rib out json` being collected, until its `done`
        self._rib: set[str] | None = None
        self._query_lock = asyncio.Lock()
        self.closed = asyncio.Event()
        self.close_reason = ""

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def read_forever(self) -> None:
        """Read and dispatch every line until ExaBGP says goodbye or closes the pipe."""
        while True:
            line = await self._channel.read_line()
            if line is None:
                self._close("stdin closed")
                return
            message = parse_line(line)
            match message:
                case Ack(ok=ok):
                    self._on_line("ack", line)
                    self._resolve(ok)
                case NeighborState():
                    self._on_line("neighbor", line)
                    log.info(
                        "neighbor %s %s",
                        message.peer,
                        message.state,
                        extra={
                            "peer": message.peer,
                            "state": message.state,
                            "reason": message.reason,
                        },
                    )
                    if self._on_neighbor is not None:
                        self._on_neighbor(message)
                case RibRoutes():
                    self._on_line("rib", line)
                    if self._rib is not None:
                        self._rib.update(message.prefixes)
                case Shutdown():
                    self._on_line("shutdown", line)
                    self._close(f"ExaBGP said {message.line[:60]!r}")
                    return
                case Malformed():
                    self._on_line("malformed", line)
                    log.warning(
                        "malformed line from ExaBGP ignored",
                        extra={"error": message.error, "line": line[:200]},
                    )
                case Info():
                    self._on_line("info", line)
                    log.debug("line from ExaBGP", extra={"line": line[:200]})

    def _resolve(self, ok: bool) -> None:
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_result(ok)
                return
            if future.cancelled():
                continue
            return
        if self.expect_acks:
            log.warning("ack from ExaBGP with no command waiting", extra={"ok": ok})

    def _close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            log.info("ExaBGP pipe closed", extra={"reason": reason})
            self.closed.set()
        for future in self._pending:
            if not future.done():
                future.cancel()

    async def send(self, lines: Sequence[str], timeout_s: float | None = None) -> list[AckResult]:
        """Write a batch of commands in one go; wait for their acks (when acks are on)."""
        if not lines:
            return []
        async with self._send_lock:
            if self.closed.is_set():
                raise BrokenPipeError(self.close_reason)
            loop = asyncio.get_running_loop()
            futures: list[asyncio.Future[bool]] = []
            if self.expect_acks:
                futures = [loop.create_future() for _ in lines]
                self._pending.extend(futures)
            await self._channel.write_lines(lines)
            for line in lines:
                log.debug("sent", extra={"command": line})
            if not self.expect_acks:
                return [AckResult.DONE] * len(lines)
            # asyncio.wait, not wait_for: wait_for can swallow a cancellation that arrives as
            # the acks do (bpo-42130), and shutdown relies on cancellation getting through
            await asyncio.wait(
                futures, timeout=timeout_s if timeout_s is not None else self.ack_timeout_s
            )
            results = []
            for future in futures:
                if future.done() and not future.cancelled():
                    results.append(AckResult.DONE if future.result() else AckResult.ERROR)
                else:
                    results.append(AckResult.TIMEOUT)
            return results

    async def enable_acks(self) -> bool:
        """`enable-ack` turns ExaBGP's acks on whatever exabgp.api.ack says, and is answered
        `done`. No answer in time means this ExaBGP will not ack: carry on without."""
        self.expect_acks = True
        (result,) = await self.send(["enable-ack"])
        if result is AckResult.TIMEOUT:
            log.warning("ExaBGP did not answer enable-ack; running without acks")
            self.expect_acks = False
            return False
        return True

    async def adj_rib_out(self) -> frozenset[str] | None:
        """The prefixes ExaBGP holds for its peers (`show adj-rib out json`), or None when it
        cannot be known (acks are off, so the answer has no end; or no answer in time)."""
        if not self.expect_acks:
            return None
        async with self._query_lock:
            self._rib = set()
            try:
                (result,) = await self.send(["show adj-rib out json"])
                held = frozenset(self._rib)
            finally:
                self._rib = None
        return held if result is AckResult.DONE else None

    def close(self) -> None:
        self._channel.close()
