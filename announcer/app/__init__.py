"""The thin shell of `announcer run`: wiring, the state owner, supervision."""

from __future__ import annotations

from .plugin import Plugin, run_plugin

__all__ = ["Plugin", "run_plugin"]
