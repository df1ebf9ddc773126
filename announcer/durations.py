"""Durations in config files: `250ms`, `1s`, `1.5s`, `2m`, `1h`, or a plain number of seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

__all__ = ["Duration", "format_duration", "parse_duration"]

_DURATION = re.compile(r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 250ms, 1s, 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = float(match["value"]) * _UNIT_SECONDS[match["unit"]]
    else:
        raise ValueError(f"{value!r} is not a duration (use 250ms, 1s, 2m, 1h or seconds)")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds and seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


Duration = Annotated[float, BeforeValidator(parse_duration)]
