"""A fake ExaBGP: runs `announcer run` as a child process and plays ExaBGP on its pipes.

It answers every command (`done`, or `error` for commands matching `fail_when`), can send
neighbor events and arbitrary lines, and records every command with the time it arrived.
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


@dataclass
class FakeExabgp:
    config_path: Path
    ack: bool = True
    fail_when: Callable[[str], bool] = lambda line: False
    commands: list[Received] = field(default_factory=list)
    process: asyncio.subprocess.Process | None = None
    stderr_path: Path | None = None
    _reader: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, *extra_args: str) -> None:
        self.stderr_path = self.config_path.with_suffix(".stderr")
        stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - handed to the child
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
        )
        stderr.close()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process and self.process.stdout
        while line := await self.process.stdout.readline():
            text = line.decode().rstrip("\n")
            self.commands.append(Received(text, time.monotonic()))
            self._changed.set()
            if self.ack:
                await self.send("error" if self.fail_when(text) else "done")

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
        deadline = time.monotonic() + timeout
        while not predicate(self.lines()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; commands so far: {self.lines()}\n{self.stderr()}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.2))

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
    path.write_text(yaml.safe_dump(data))
    return path
