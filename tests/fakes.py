"""A fake ExaBGP: runs `announcer run` as a child process and plays ExaBGP on its pipes.

It answers every command (`done`, or `error` for commands matching `fail_when`), can send
neighbor events and arbitrary lines, and records every command with the time it arrived. Like
the real one it keeps an adj-rib-out (`rib`: prefix -> the announce line) that outlives the
plugin (`restart_plugin` kills it and starts a new one against the same RIB) and answers
`show adj-rib out json` from it, so tests can assert on what ExaBGP would really carry.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class Received:
    line: str
    at: float


BARRIER = "show neighbor 0.0.0.0 summary"
BARRIER_HEADER = "Peer            AS        up/down state       |     #sent     #recvd"


@dataclass
class FakeExabgp:
    config_path: Path
    ack: bool = True
    fail_when: Callable[[str], bool] = lambda line: False
    # commands whose answer (ack and any lines) this ExaBGP never sends, as a real one might
    # lose one; each drops one answer, then is spent
    drop_answer: list[Callable[[str], bool]] = field(default_factory=list)
    # False: an ExaBGP that answers the barrier with a bare `done` (older or other builds)
    barrier_header: bool = True
    commands: list[Received] = field(default_factory=list)
    rib: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    peer: str = "198.51.100.1"
    process: asyncio.subprocess.Process | None = None
    stderr_path: Path | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(
        self, *extra_args: str, env: dict[str, str] | None = None, nofile: int | None = None
    ) -> None:
        """Start the plugin; `nofile` caps its open files (soft and hard, so it cannot raise
        them), as a small service limit would."""
        limit = None
        if nofile is not None:
            import resource

            def limit() -> None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.stderr_path = self.config_path.with_suffix(".stderr")
        stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - handed to the child
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "announcer",
            "run",
            "-c",
            str(self.config_path),
            *extra_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            preexec_fn=limit,
        )
        stderr.close()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process and self.process.stdout
        while line := await self.process.stdout.readline():
            text = line.decode().rstrip("\n")
            dropper = next((drop for drop in self.drop_answer if drop(text)), None)
            if dropper is not None:
                self.drop_answer.remove(dropper)
                self.dropped.append(text)
                if text != BARRIER:
                    self.commands.append(Received(text, time.monotonic()))
                    self._apply(text)
                self._changed.set()
                continue
            if text == BARRIER:  # the pipe's plumbing, not a command a test looks at
                if self.ack:
                    if self.barrier_header:
                        await self.send(BARRIER_HEADER)
                    await self.send("done")
                continue
            self.commands.append(Received(text, time.monotonic()))
            failed = self.fail_when(text)
            if not failed:
                for answer in self._apply(text):
                    await self.send(answer)
            self._changed.set()
            if self.ack:
                await self.send("error" if failed else "done")

    def _apply(self, line: str) -> list[str]:
        """Change the RIB as ExaBGP would; return the lines of an answer, if any."""
        words = line.split()
        if line == "show adj-rib out json":
            return [
                json.dumps({self.peer: {"routes": [{"prefix": p, "family": _family(p)}]}})
                for p in sorted(self.rib)
            ]
        if words[:2] == ["announce", "route"]:
            self.rib[words[2]] = line
        elif words[:2] == ["announce", "attributes"]:
            for prefix in words[words.index("nlri") + 1 :]:
                self.rib[prefix] = line
        elif words[:2] == ["withdraw", "route"]:
            self.rib.pop(words[2], None)
        elif words[:2] == ["withdraw", "attributes"]:
            for prefix in words[words.index("nlri") + 1 :]:
                self.rib.pop(prefix, None)
        return []

    def announced(self) -> set[str]:
        return set(self.rib)

    async def restart_plugin(self, *extra_args: str, env: dict[str, str] | None = None) -> None:
        """SIGKILL the plugin and start a new one; the RIB stays, as in ExaBGP."""
        await self.stop()
        self.commands.clear()
        await self.start(*extra_args, env=env)

    async def wait_rib(
        self, predicate: Callable[[dict[str, str]], bool], timeout: float = 10.0
    ) -> None:
        await self._until(lambda: predicate(self.rib), lambda: f"RIB: {self.rib}", timeout)

    async def _until(
        self, done: Callable[[], bool], what: Callable[[], str], timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; {what()}\n{self.stderr()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

    async def send(self, line: str) -> None:
        assert self.process and self.process.stdin
        if self.process.stdin.is_closing():
            return
        try:
            self.process.stdin.write(line.encode() + b"\n")
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    async def neighbor(self, state: str, peer: str = "198.51.100.1") -> None:
        await self.send(
            json.dumps(
                {
                    "exabgp": "5.0.0",
                    "time": time.time(),
                    "host": "lb",
                    "pid": 1,
                    "ppid": 1,
                    "counter": 1,
                    "type": "state",
                    "neighbor": {
                        "address": {"local": "198.51.100.2", "peer": peer},
                        "asn": {"local": 65001, "peer": 65000},
                        "state": state,
                    },
                }
            )
        )

    def lines(self, prefix: str = "") -> list[str]:
        return [c.line for c in self.commands if c.line.startswith(prefix)]

    async def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 10.0) -> None:
        await self._until(
            lambda: predicate(self.lines()), lambda: f"commands so far: {self.lines()}", timeout
        )

    async def wait_for_line(self, fragment: str, timeout: float = 10.0) -> None:
        await self.wait_for(lambda lines: any(fragment in line for line in lines), timeout)

    def stderr(self) -> str:
        return (
            self.stderr_path.read_text() if self.stderr_path and self.stderr_path.exists() else ""
        )

    def signal(self, signum: int) -> None:
        assert self.process
        os.kill(self.process.pid, signum)

    async def close_stdin(self) -> None:
        assert self.process and self.process.stdin
        self.process.stdin.close()

    async def wait(self, timeout: float = 10.0) -> int:
        assert self.process
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader:
            await asyncio.wait_for(self._reader, timeout)
        return code

    async def stop(self) -> None:
        if self.process and self.process.returncode is None:
            with _suppress():
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        if self._reader:
            self._reader.cancel()


def _family(prefix: str) -> str:
    return "ipv6 unicast" if ":" in prefix else "ipv4 unicast"


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)  # type: ignore[arg-type]


def fast_http_check(url: str, **overrides: object) -> dict:
    """An HTTP check with short timings, so that tests settle in a fraction of a second."""
    return {
        "http": {"url": url},
        "interval": "200ms",
        "fast_interval": "50ms",
        "timeout": "100ms",
        **overrides,
    }


def write_config(path: Path, data: dict) -> Path:
    """Write a plugin config. The test machine does not hold the VIPs, so the address guard
    looks away unless a test sets `addresses:` itself (tests/process/test_addresses.py does)."""
    data = {"addresses": {"mode": "ignore"}, **data}
    path.write_text(yaml.safe_dump(data))
    return path


async def wait_for_api(listen: str, timeout: float = 5.0) -> None:
    """Wait until the plugin's API proper answers: until the checks have their first verdicts
    (or for 2 s) the socket answers `503 starting`."""
    from aiohttp import ClientError, ClientSession

    deadline = time.monotonic() + timeout
    async with ClientSession() as http:
        while True:
            try:
                async with http.get(f"http://{listen}/healthz") as r:
                    await r.read()
                    if r.status == 200:
                        return
            except (OSError, ClientError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the API at {listen} never came up")
            await asyncio.sleep(0.05)
