"""The hand-written HTTP/1.1 client (`healthchecks/_lean_http.py`) against a maintained parser,
h11, as the netlink parser is checked against pyroute2's.

The framing function is fed the same bytes as h11, whole and cut anywhere: wherever h11 has a
complete response, ours has the same status and body (cut at the probe's limit) and keeps the
connection only where h11 would; before the end, ours has nothing. Then the cases that matter
on a real socket: split chunks, trailers, HTTP/1.0, 204/304, `Connection: close`, a body over
the limit, a server that closes after the first exchange or without answering, a body cut
short.
"""

from __future__ import annotations

import asyncio
import contextlib

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthchecks._lean_http import BadResponse, LeanClient, _complete, build_request

LIMIT = 64


def h11_reads(raw: bytes, eof: bool) -> tuple[int, bytes, bool] | str | None:
    """What h11 makes of a response to our GET: (status, body, reusable), None while it needs
    more, or "error"."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/health", headers=[("Host", "lb")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(raw)
    if eof:
        conn.receive_data(b"")
    status, body = None, b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return None
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert status is not None
                reusable = (
                    not eof
                    and conn.our_state is h11.DONE
                    and conn.their_state is h11.DONE
                    and conn.trailing_data == (b"", False)
                )
                return status, body, reusable
            elif isinstance(event, h11.ConnectionClosed):
                return "error"
    except h11.RemoteProtocolError:
        return "error"


def ours(raw: bytes, eof: bool) -> tuple[int, bytes, bool] | str | None:
    try:
        return _complete(bytearray(raw), LIMIT, eof=eof)
    except BadResponse:
        return "error"


def agree(raw: bytes, eof: bool) -> None:
    theirs, mine = h11_reads(raw, eof), ours(raw, eof)
    if theirs is None or theirs == "error":
        # incomplete for h11: we may only have cut a body at our limit (never a reuse)
        if mine not in (None, "error"):
            assert isinstance(mine, tuple) and len(mine[1]) == LIMIT and not mine[2], (raw, mine)
        elif theirs == "error":
            assert mine in ("error", None) if not eof else mine == "error", (raw, mine)
        return
    assert isinstance(mine, tuple), (raw, theirs, mine)
    status, body, reusable = theirs
    assert mine[0] == status and mine[1] == body[:LIMIT], (raw, theirs, mine)
    # reusing a connection h11 would not is a bug; not reusing one it would is only caution
    assert not mine[2] or reusable, (raw, theirs, mine)
    if len(body) <= LIMIT and b"trailer" not in raw.lower():
        assert mine[2] == reusable, (raw, theirs, mine)


# ------------------------------------------------------------------ generated responses
@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, bool]:
    """A valid response and whether it ends at the close of the connection."""
    version = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0"]))
    status = draw(st.sampled_from([200, 204, 304, 404, 500, 503]))
    body = b"" if status in (204, 304) else draw(st.binary(max_size=150))
    framing = draw(st.sampled_from(["length", "chunked", "close"]))
    if version == b"HTTP/1.0" and framing == "chunked":
        framing = "length"
    if status in (204, 304):
        framing = "none"
    headers = [b"Server: test"]
    connection = draw(st.sampled_from([None, b"close", b"keep-alive"]))
    if connection is not None:
        headers.append(b"Connection: " + connection)
    if framing == "length":
        headers.append(b"Content-Length: %d" % len(body))
        payload = body
    elif framing == "chunked":
        headers.append(b"Transfer-Encoding: chunked")
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        payload = b"".join(
            b"%x%s\r\n%s\r\n" % (len(p), draw(st.sampled_from([b"", b";ext=1"])), p)
            for p in pieces
            if p
        )
        trailers = draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"]))
        payload += b"0\r\n" + trailers + b"\r\n"
    elif framing == "close":
        payload = body
    else:
        payload = b""
    reason = draw(st.sampled_from([b"OK", b"Whatever It Is", b""]))
    head = b"%s %d %s\r\n" % (version, status, reason) + b"".join(h + b"\r\n" for h in headers)
    return head + b"\r\n" + payload, framing == "close"


@settings(max_examples=400, deadline=None)
@given(case=responses(), cut=st.integers(0, 400))
def test_framing_agrees_with_h11_whole_and_cut_anywhere(case, cut):
    raw, ends_at_close = case
    agree(raw, eof=ends_at_close)
    # any prefix: while the message is incomplete, nothing (or only a body cut at our limit)
    prefix = raw[: min(cut, len(raw) - 1)] if raw else raw
    agree(prefix, eof=False)


# ------------------------------------------------------------------ the table, on a socket
CASES = {
    "content-length, kept": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        (200, b"ok"),
        True,
    ),
    "chunked in split pieces, CRLFs across reads": (
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r",
            b"\nok\r\n3;x=y\r\n",
            b"abc\r",
            b"\n0\r\n\r",
            b"\n",
        ],
        (200, b"okabc"),
        True,
    ),
    "chunked with a trailer": (
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"],
        (200, b"ok"),
        None,  # either: the body is right; keeping it is optional
    ),
    "HTTP/1.0 read until close": (
        [b"HTTP/1.0 200 OK\r\n\r\nall of it"],
        (200, b"all of it"),
        False,
    ),
    "204, no body": ([b"HTTP/1.1 204 No Content\r\n\r\n"], (204, b""), True),
    "304, no body": ([b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n"], (304, b""), True),
    "Connection: close": (
        [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
        (200, b"ok"),
        False,
    ),
    "a body over the limit": (
        [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 100],
        (200, b"x" * LIMIT),
        False,
    ),
}


class Server:
    """Sends scripted bytes for each request, in the pieces given; closes when told."""

    def __init__(self, pieces: list[bytes], close_after: bool = False, answer: bool = True):
        self.pieces = pieces
        self.close_after = close_after
        self.answer = answer
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                if not self.answer:
                    break
                for piece in self.pieces:
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.005)
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def __aenter__(self) -> tuple[Server, int]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self, self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


def client(port: int) -> LeanClient:
    return LeanClient("127.0.0.1", port, build_request("/health", "lb"), limit=LIMIT)


@pytest.mark.parametrize("name", CASES)
async def test_each_case_through_a_real_socket_as_h11_reads_it(name):
    pieces, expected, kept = CASES[name]
    raw = b"".join(pieces)
    theirs = h11_reads(raw, eof=not kept if kept is not None else False)
    if isinstance(theirs, tuple):
        assert theirs[:2][0] == expected[0] and theirs[1][:LIMIT] == expected[1]
    async with Server(pieces, close_after=kept is False) as (server, port):
        lean = client(port)
        assert await asyncio.wait_for(lean.get(), 2) == expected
        assert await asyncio.wait_for(lean.get(), 2) == expected
        if kept is not None:
            # kept: both exchanges on one connection; not kept: a new one for the second
            assert server.connections == (1 if kept else 2), server.connections
        lean.close()


async def test_a_server_that_closes_after_the_first_exchange_costs_nothing():
    """A kept-alive answer, then the server closes (a reload, a worker recycled): the next
    probe connects afresh and passes; it is no failure."""
    pieces = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    async with Server(pieces, close_after=True) as (server, port):
        lean = client(port)
        assert await lean.get() == (200, b"ok")
        await asyncio.sleep(0.05)  # the close has arrived
        assert await lean.get() == (200, b"ok")
        assert server.connections == 2
        lean.close()


async def test_a_close_on_the_first_exchange_is_a_failure_not_a_stale_connection():
    """A server that accepts and closes without answering (nothing behind it) fails the
    probe; only a *reused* connection closed as the request went out is sent again."""
    async with Server([], answer=False) as (server, port):
        lean = client(port)
        with pytest.raises((BadResponse, ConnectionError)):
            await asyncio.wait_for(lean.get(), 2)
        assert server.connections == 1  # not retried behind the probe's back
        lean.close()


@pytest.mark.parametrize(
    "pieces",
    [
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!"],
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhalf!\r\n"],
    ],
    ids=["content-length", "chunked"],
)
async def test_a_body_cut_short_is_a_failure_and_the_connection_is_not_kept(pieces):
    assert h11_reads(b"".join(pieces), eof=True) == "error"
    async with Server(pieces, close_after=True) as (server, port):
        lean = client(port)
        with pytest.raises(BadResponse):
            await asyncio.wait_for(lean.get(), 2)
        with contextlib.suppress(BadResponse):
            await asyncio.wait_for(lean.get(), 2)
        assert server.connections == 2  # the cut connection was never reused
        lean.close()


async def test_a_body_cut_at_the_limit_never_leaves_its_rest_for_the_next_probe():
    """The server answers 100 bytes in two parts and sends the rest only once the next request
    is there (a slow server): a client that kept the connection after reading 64 bytes would
    take those leftovers for the next answer and fail the probe."""
    rest = b"y" * 30
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 70
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")  # a second request on this connection
            writer.write(rest + answer + rest)
            await writer.drain()
            await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    lean = client(server.sockets[0].getsockname()[1])
    try:
        assert await asyncio.wait_for(lean.get(), 2) == (200, b"x" * LIMIT)
        assert await asyncio.wait_for(lean.get(), 2) == (200, b"x" * LIMIT)
        assert connections == 2
    finally:
        lean.close()
        server.close()
