"""The pure tests: the core, the parsers, the renderers. They run in seconds and touch
nothing outside the process: opening a socket or starting a process fails the test (the
process-level tests are in tests/process/, the namespace lab's in tests/lab/)."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


class NotPure(AssertionError):
    pass


def _refuse(what: str) -> Any:
    def refused(*args: object, **kwargs: object) -> None:
        raise NotPure(f"a pure test opened {what}: it belongs in tests/process/")

    return refused


@pytest.fixture(autouse=True)
def _nothing_outside(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "__init__", _refuse("a socket"))
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("a process"))
    yield
