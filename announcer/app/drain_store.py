"""Drains kept on disk (drain.state_file), so an operator's drain survives a plugin restart.

Written atomically and durably (temporary file, fsync, rename, fsync of the folder): a crash
or power loss leaves the old file or the new one, never an empty or half-written one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..core import RestoredDrain, SaveDrains
from ..logs import get_logger

__all__ = ["DrainStore"]

log = get_logger("drains")


class DrainStore:
    """`saved` says whether the drains in force are on disk; `error` why not. A drain that
    could not be written is still in force (in memory), and says so: API answer, status,
    `announcer_drain_state_saved`, alert."""

    def __init__(self, path: str | None, on_saved: Callable[[bool], None] | None = None) -> None:
        self.path = path
        self.saved = True
        self.error: str | None = None
        self._on_saved = on_saved or (lambda ok: None)

    def save(self, effect: SaveDrains) -> None:
        if self.path is None:
            return
        try:
            self._write(effect)
        except OSError as exc:
            self.saved, self.error = False, f"cannot write {self.path}: {exc.strerror}"
            log.error(
                "cannot write the drain state file; the drains are kept in memory only",
                extra={"path": self.path, "error": exc.strerror},
            )
        else:
            self.saved, self.error = True, None
        self._on_saved(self.saved)

    def _write(self, effect: SaveDrains) -> None:
        assert self.path is not None
        data = {
            prefix: {
                "reason": entry.reason,
                "source": entry.source,
                "since": entry.since_wall,
                "withdrawn": entry.completed,
            }
            for prefix, entry in effect.drains
        }
        folder = os.path.dirname(os.path.abspath(self.path))
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False) as out:
            try:
                json.dump(data, out)
                out.flush()
                os.fsync(out.fileno())
            except OSError:
                os.unlink(out.name)
                raise
        os.replace(out.name, self.path)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def load(self) -> tuple[RestoredDrain, ...]:
        if self.path is None or not os.path.exists(self.path):
            return ()
        try:
            saved = json.loads(Path(self.path).read_text())
            if not isinstance(saved, dict):
                raise ValueError("not a JSON object")
            return tuple(
                RestoredDrain(
                    prefix=str(prefix),
                    reason=str(entry.get("reason", "")),
                    source=str(entry.get("source", "state")),
                    since_wall=float(entry.get("since", 0.0)),
                    completed=bool(entry.get("withdrawn", False)),
                )
                for prefix, entry in saved.items()
            )
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.error(
                "cannot read the drain state file; starting undrained",
                extra={"path": self.path, "error": str(exc)},
            )
            return ()
