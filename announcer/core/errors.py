"""The base of every error the plugin reports to a person (a reload refused, a command that
failed, a value refused): one type to catch, and its problems as located lines.

It lives in the core because the core raises one of them too (a value refused by the command
renderer), and the core imports nothing outside itself.
"""

from __future__ import annotations

__all__ = ["AnnouncerError"]


class AnnouncerError(Exception):
    """Something a user must be told, never a bug. `problems` are one line each, each saying
    where (a config path, a check, an address) and what."""

    @property
    def problems(self) -> list[str]:
        return [str(self)]
