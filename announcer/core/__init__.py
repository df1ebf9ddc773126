"""The pure decision core: no I/O, no asyncio, no clock. Time is always passed in."""

from __future__ import annotations

from .exabgp_commands import UnsafeToken, announce_command, batch_commands, withdraw_command
from .exabgp_messages import Ack, Info, Malformed, Message, NeighborState, Shutdown, parse_line
from .hysteresis import CheckState, Health, effective_health, is_confirming, step
from .model import Decision, Reason, Route, Verdict
from .policy import decide
from .reconcile import Changes, plan

__all__ = [
    "Ack",
    "Changes",
    "CheckState",
    "Decision",
    "Health",
    "Info",
    "Malformed",
    "Message",
    "NeighborState",
    "Reason",
    "Route",
    "Shutdown",
    "UnsafeToken",
    "Verdict",
    "announce_command",
    "batch_commands",
    "decide",
    "effective_health",
    "is_confirming",
    "parse_line",
    "plan",
    "step",
    "withdraw_command",
]
