"""The pure decision core: no I/O, no asyncio, no clock. Time is always passed in."""

from __future__ import annotations

from .dampening import Dampening, DampeningPolicy, current, record_flap
from .drain import GRACEFUL_SHUTDOWN, DrainPhase, DrainTiming, drain_phase
from .exabgp_commands import UnsafeToken, announce_command, batch_commands, withdraw_command
from .exabgp_messages import Ack, Info, Malformed, Message, NeighborState, Shutdown, parse_line
from .hysteresis import CheckState, Health, effective_health, is_confirming, step
from .model import Decision, Reason, Route, Verdict
from .policy import decide, finalize
from .reconcile import Changes, plan
from .weight import BYTES_PER_MBPS, bandwidth_community, quantise

__all__ = [
    "BYTES_PER_MBPS",
    "GRACEFUL_SHUTDOWN",
    "Ack",
    "Changes",
    "CheckState",
    "Dampening",
    "DampeningPolicy",
    "Decision",
    "DrainPhase",
    "DrainTiming",
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
    "bandwidth_community",
    "batch_commands",
    "current",
    "decide",
    "drain_phase",
    "effective_health",
    "finalize",
    "is_confirming",
    "parse_line",
    "plan",
    "quantise",
    "record_flap",
    "step",
    "withdraw_command",
]
