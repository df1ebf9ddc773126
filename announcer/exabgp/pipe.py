"""The pipe to ExaBGP: read stdin without pause, write commands to stdout, match acks.

ExaBGP freezes when a plugin stops reading its stdin, so one task reads every line as it
arrives, whatever else is going on. Acks (`done`/`error`) are counted against the batch in
flight, which ends with a barrier, so that one answer ExaBGP never sends costs that batch
alone (see ExabgpSession).
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import BinaryIO, Protocol

from ..core import (
    BARRIER_COMMAND,
    Ack,
    AddPathNegotiated,
    BarrierMark,
    Info,
    Malformed,
    NeighborState,
    RibRoutes,
    RoutesReceived,
    Shutdown,
    parse_line,
)
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
    """A pipe, a socket or a terminal; any other character device (/dev/null) is used as a
    file (uvloop aborts the process on a pipe transport over one)."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or (stat.S_ISCHR(mode) and os.isatty(fd))


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
# what the routers send back (their paths for the VIPs, the session's ADD-PATH): the fleet view
FleetCallback = Callable[[RoutesReceived | AddPathNegotiated], None]


class _Batch:
    """Commands in flight and the acks counted against them. With barriers, the batch ends
    with BARRIER_COMMAND: its first line (`marked`) says every answer to the batch is in, and
    the batch counts only when exactly one ack per command came before it."""

    __slots__ = ("acks", "barrier", "future", "marked", "size")

    def __init__(self, size: int, barrier: bool, future: asyncio.Future[list[bool | None]]):
        self.size = size
        self.barrier = barrier
        self.future = future
        self.acks: list[bool] = []
        self.marked = False


class _Sync(StrEnum):
    """What the reader expects next."""

    ALIGNED = "aligned"  # answers belong to the batch in flight, in order
    PROBING = "probing"  # a lone barrier: does this ExaBGP answer it with its header?
    RESYNC = "resync"  # a lone barrier after a lost answer: drop everything until it


class ExabgpSession:
    """Speaks the process API over a LineChannel.

    One batch is in flight at a time. ExaBGP's acks carry no id, so one answer it never sends
    would shift every later answer onto the command before it. Each batch therefore ends with a
    barrier (an asynchronous command answered by a fixed line; see BARRIER_COMMAND): a batch
    whose answers do not add up when the barrier's line arrives is unknown as a whole, never
    half-trusted, and after a batch that timed out the pipe re-aligns on a lone barrier before
    it sends anything else. An ExaBGP that does not answer the barrier with its line (checked
    once at start) gets plain in-order matching, where a late ack still lines up with the
    command it answers."""

    def __init__(
        self,
        channel: LineChannel,
        *,
        expect_acks: bool,
        ack_timeout_s: float,
        on_neighbor: NeighborCallback | None = None,
        on_line: Callable[[str, str], None] | None = None,
        on_fleet: FleetCallback | None = None,
    ) -> None:
        self._channel = channel
        self._on_fleet = on_fleet
        self.expect_acks = expect_acks
        self.ack_timeout_s = ack_timeout_s
        self._on_neighbor = on_neighbor
        self._on_line = on_line or (lambda kind, line: None)
        # barriers: None until probed (plain in-order matching meanwhile)
        self.barriers: bool | None = None
        self._sync = _Sync.ALIGNED
        self._batch: _Batch | None = None
        # a lone barrier's progress (probe or resync): its line seen, then its ack ends it
        self._lone: asyncio.Future[bool] | None = None
        self._lone_marked = False
        # without barriers: acks still owed by batches that timed out (a late ack is theirs)
        self._owed = 0
        self.resyncs = 0
        self._send_lock = asyncio.Lock()
        # the answer to `show adj-rib out json` being collected, until its `done`
        self._rib: set[str] | None = None
        self._query_lock = asyncio.Lock()
        self.closed = asyncio.Event()
        self.close_reason = ""

    @property
    def pending(self) -> int:
        """Commands sent whose answer has not come (or never will: until re-aligned)."""
        batch = self._batch
        in_flight = batch.size - len(batch.acks) if batch is not None else 0
        return in_flight + self._owed + (1 if self._sync is not _Sync.ALIGNED else 0)

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
                    self._ack(ok)
                case BarrierMark():
                    self._on_line("info", line)
                    self._mark()
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
                case RoutesReceived() | AddPathNegotiated():
                    self._on_line("received", line)
                    if self._on_fleet is not None:
                        self._on_fleet(message)
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

    # ------------------------------------------------------------ matching answers
    def _ack(self, ok: bool) -> None:
        if self._sync is not _Sync.ALIGNED:
            self._lone_ack()
            return
        if self._owed:
            self._owed -= 1  # a late answer to a batch that timed out
            return
        batch = self._batch
        if batch is None:
            self._unexpected("ack")
            return
        if batch.barrier and batch.marked:
            self._finish(batch, batch.acks if len(batch.acks) == batch.size else None)
            return
        batch.acks.append(ok)
        if not batch.barrier and len(batch.acks) == batch.size:
            self._finish(batch, batch.acks)

    def _mark(self) -> None:
        if self._sync is not _Sync.ALIGNED:
            self._lone_marked = True
            return
        batch = self._batch
        if batch is None or not batch.barrier or batch.marked:
            self._unexpected("barrier")
            return
        batch.marked = True

    def _lone_ack(self) -> None:
        """An ack while a lone barrier is out: before its line, a leftover (resync) or the
        sign of an ExaBGP that answers the barrier without its line (probe); after it, the
        barrier's own ack: the pipe is aligned."""
        lone = self._lone
        if self._lone_marked:
            self._sync = _Sync.ALIGNED
            if lone is not None and not lone.done():
                lone.set_result(True)
        elif self._sync is _Sync.PROBING:
            self._sync = _Sync.ALIGNED
            if lone is not None and not lone.done():
                lone.set_result(False)

    def _unexpected(self, what: str) -> None:
        log.warning("answer from ExaBGP with no command waiting", extra={"answer": what})
        if self.barriers:
            self._out_of_step()

    def _out_of_step(self) -> None:
        """Answers can no longer be matched: drop them until a barrier's line and ack (the
        next send's lone barrier, or any leftover one) bring the pipe back in step."""
        self._sync = _Sync.RESYNC
        self._lone_marked = False

    def _finish(self, batch: _Batch, acks: list[bool] | None) -> None:
        self._batch = None
        if acks is None:
            log.warning(
                "ExaBGP's answers to a batch do not add up; every command in it is unknown",
                extra={"commands": batch.size, "acks": len(batch.acks)},
            )
        if not batch.future.done():
            batch.future.set_result(list(acks) if acks is not None else [None] * batch.size)

    def _close(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            log.info("ExaBGP pipe closed", extra={"reason": reason})
            self.closed.set()
        for future in (self._batch.future if self._batch else None, self._lone):
            if future is not None and not future.done():
                future.cancel()

    # ------------------------------------------------------------ sending
    async def send(self, lines: Sequence[str], timeout_s: float | None = None) -> list[AckResult]:
        """Write a batch of commands in one go; wait for their acks (when acks are on)."""
        if not lines:
            return []
        timeout = timeout_s if timeout_s is not None else self.ack_timeout_s
        async with self._send_lock:
            if self.closed.is_set():
                raise BrokenPipeError(self.close_reason)
            if not self.expect_acks:
                await self._write(lines)
                return [AckResult.DONE] * len(lines)
            trusted = self._sync is _Sync.ALIGNED or await self._lone_barrier(_Sync.RESYNC, timeout)
            if not trusted:
                # ExaBGP is not answering: send anyway (a shutdown's withdraw must go out),
                # but nothing that comes back can be matched
                await self._write(lines)
                return [AckResult.TIMEOUT] * len(lines)
            barrier = bool(self.barriers)
            batch = _Batch(len(lines), barrier, asyncio.get_running_loop().create_future())
            self._batch = batch
            await self._write([*lines, BARRIER_COMMAND] if barrier else lines)
            # asyncio.wait, not wait_for: wait_for can swallow a cancellation that arrives as
            # the acks do (bpo-42130), and shutdown relies on cancellation getting through
            await asyncio.wait([batch.future], timeout=timeout)
            if batch.future.done() and not batch.future.cancelled():
                return [_RESULT[answer] for answer in batch.future.result()]
            if self._batch is batch:
                self._batch = None
                if barrier:
                    self._out_of_step()
                else:
                    self._owed += batch.size - len(batch.acks)
            return [AckResult.TIMEOUT] * len(lines)

    async def _write(self, lines: Sequence[str]) -> None:
        await self._channel.write_lines(lines)
        for line in lines:
            log.debug("sent", extra={"command": line})

    async def _lone_barrier(self, purpose: _Sync, timeout_s: float) -> bool:
        """Send the barrier alone and wait for its line and ack. RESYNC: drop every answer
        until then; True once aligned. PROBING: True when ExaBGP answers it with its line."""
        if purpose is _Sync.RESYNC:
            self._out_of_step()
        else:
            self._sync, self._lone_marked = purpose, False
        self._lone = asyncio.get_running_loop().create_future()
        if purpose is _Sync.RESYNC:
            self.resyncs += 1
            log.warning("re-aligning with ExaBGP's answers after one went missing")
        await self._write([BARRIER_COMMAND])
        await asyncio.wait([self._lone], timeout=timeout_s)
        lone, self._lone = self._lone, None
        if lone.done() and not lone.cancelled():
            return lone.result()
        return False

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

    async def probe_barrier(self) -> bool:
        """Does this ExaBGP answer the barrier with its line? Then every batch ends with one."""
        if not self.expect_acks or self.barriers is not None:
            return bool(self.barriers)
        async with self._send_lock:
            supported = await self._lone_barrier(_Sync.PROBING, self.ack_timeout_s)
            if self._sync is not _Sync.ALIGNED:  # no answer at all: it may still come
                self._sync = _Sync.ALIGNED
                self._owed += 1
        self.barriers = supported
        if not supported:
            log.warning(
                "ExaBGP does not answer the barrier command; acks are matched in order only",
                extra={"command": BARRIER_COMMAND},
            )
        return supported

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


_RESULT = {True: AckResult.DONE, False: AckResult.ERROR, None: AckResult.TIMEOUT}
