"""The lab's long-lived clients: many kept-alive HTTP connections to the VIP, each from its own
source port (so the router's L4 hash spreads them over the hosts), each sending a request
every `interval`. One JSON line per event:

- `{"t", "conn", "event": "home", "server"}`: the connection's first answer, from `server`;
- `{"t", "conn", "event": "break", "home", "why"}`: it broke (`reset`, `eof`, `timeout`,
  `moved`: answered by another host than its home, `refused`); it then connects again.

Run inside a client namespace (`ip netns exec client python -m announcer.lab.long_lived`).
Bounded: at most 2,000 connections, for at most 10 minutes. `read_events` and `breaks_in`
count, from its output, which connections an event broke (the benchmark and the lab tests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Breaks", "breaks_in", "homes_at", "main", "read_events"]

MAX_CONNECTIONS = 2000
MAX_SECONDS = 600.0
REQUEST = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n"


@dataclass(frozen=True, slots=True)
class Breaks:
    event: str
    host: str  # the host whose state changed
    survivors: int  # connections on the other hosts when the event was made
    survivors_broken: int
    on_host: int  # connections on the host itself
    on_host_broken: int
    # how long the change took to settle: r1's next hops (plain ECMP), or the slots'
    # holders (stable next hops)
    settled_s: float | None = None

    @property
    def survivor_ratio(self) -> float:
        return self.survivors_broken / self.survivors if self.survivors else 0.0


def homes_at(events: list[dict[str, Any]], t: float) -> dict[int, str]:
    """Each connection's host at time t (its latest `home` before t, unless it broke since)."""
    homes: dict[int, str] = {}
    for e in events:
        if e["t"] > t:
            break
        if e["event"] == "home":
            homes[e["conn"]] = e["server"]
        elif e["event"] == "break":
            homes.pop(e["conn"], None)
    return homes


def breaks_in(
    events: list[dict[str, Any]], event: str, host: str, start: float, end: float
) -> Breaks:
    """Which of the connections open at `start` broke before `end`, on `host` and elsewhere."""
    homes = homes_at(events, start)
    broken = {e["conn"] for e in events if e["event"] == "break" and start <= e["t"] <= end}
    survivors = {conn for conn, home in homes.items() if home != host}
    mine = {conn for conn, home in homes.items() if home == host}
    return Breaks(
        event, host, len(survivors), len(survivors & broken), len(mine), len(mine & broken)
    )


def read_events(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return sorted(out, key=lambda e: e["t"])


def _emit(**fields: object) -> None:
    print(json.dumps({"t": round(time.time(), 4), **fields}), flush=True)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> str:
    """One request on the kept connection; the server's name (the lab's nginx answers `/`
    with its host's name)."""
    writer.write(REQUEST)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length)
    return body.decode(errors="replace").strip()


async def _connection(
    number: int, host: str, port: int, interval_s: float, timeout_s: float, until: float
) -> None:
    while time.time() < until:
        home = ""
        writer: asyncio.StreamWriter | None = None
        try:
            opening = asyncio.open_connection(host, port)
            reader, opened = await asyncio.wait_for(opening, timeout_s)
            writer = opened
            while time.time() < until:
                server = await asyncio.wait_for(_exchange(reader, opened), timeout_s)
                if not home:
                    home = server
                    _emit(conn=number, event="home", server=server)
                elif server != home:
                    _emit(conn=number, event="break", home=home, why="moved")
                    break
                await asyncio.sleep(interval_s)
        except TimeoutError:
            _emit(conn=number, event="break", home=home, why="timeout")
        except ConnectionRefusedError:
            _emit(conn=number, event="break", home=home, why="refused")
            await asyncio.sleep(interval_s)
        except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError) as exc:
            why = "eof" if isinstance(exc, asyncio.IncompleteReadError) else "reset"
            _emit(conn=number, event="break", home=home, why=why)
        except OSError as exc:
            _emit(conn=number, event="break", home=home, why=type(exc).__name__)
            await asyncio.sleep(interval_s)
        finally:
            if writer is not None:
                writer.close()


async def _run(
    host: str, port: int, connections: int, interval_s: float, timeout_s: float, seconds: float
) -> None:
    until = time.time() + min(seconds, MAX_SECONDS)
    tasks = []
    for number in range(min(connections, MAX_CONNECTIONS)):
        # spread the requests over the interval rather than all at once
        tasks.append(
            asyncio.create_task(_connection(number, host, port, interval_s, timeout_s, until))
        )
        await asyncio.sleep(interval_s / max(connections, 1))
    await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--connections", type=int, default=240)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--timeout", type=float, default=1.5)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    asyncio.run(
        _run(args.host, args.port, args.connections, args.interval, args.timeout, args.seconds)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
