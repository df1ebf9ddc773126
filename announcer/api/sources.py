"""What the operator edge reads from the running plugin, as small protocols: the API, the
metrics and the status depend on these, never on the state task, the reconciler or the BFD
monitor themselves (nothing below imports above; tests/pure/test_architecture.py checks)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Protocol

from ..core import Event, Ledger, Route, State

__all__ = ["AckSource", "BfdSource", "StateSource"]


class StateSource(Protocol):
    """The reducer's published snapshot, and a way to submit an event to it."""

    @property
    def state(self) -> State: ...

    @property
    def heartbeat(self) -> float: ...

    def submit(self, event: Event) -> Awaitable[State]: ...


class AckSource(Protocol):
    """What ExaBGP acknowledged: per prefix over every router, and per router."""

    @property
    def acked(self) -> Mapping[str, Route | None]: ...

    @property
    def ledgers(self) -> Mapping[str | None, Ledger]: ...

    @property
    def errors(self) -> int: ...


class BfdSource(Protocol):
    """bfdd's view of the BFD sessions to the routers."""

    @property
    def configured(self) -> tuple[str, ...]: ...

    @property
    def reachable(self) -> bool | None: ...

    @property
    def via(self) -> str: ...

    @property
    def peers(self) -> Mapping[str, str]: ...
