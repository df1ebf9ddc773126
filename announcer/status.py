"""The status document served at /v1/status and printed by `announcer status`."""

from __future__ import annotations

import time
from typing import Any

from .core import DrainPhase, Verdict
from .engine import Engine
from .metrics import ack_state
from .reconciler import Reconciler

__all__ = ["status_document"]


def status_document(engine: Engine, reconciler: Reconciler, pending: int) -> dict[str, Any]:
    now, wall = time.monotonic(), time.time()
    checks: dict[str, Any] = {}
    for name, state in engine.check_states.items():
        entry: dict[str, Any] = {
            "state": state.health.value,
            "consecutive_successes": state.successes,
            "consecutive_failures": state.failures,
            "last_result": None,
        }
        if (last := engine.last_results.get(name)) is not None:
            entry["last_result"] = {
                "ok": last.result.ok,
                "reason": last.result.reason,
                "detail": last.result.detail,
                "duration_s": round(last.result.duration_s, 6),
                "age_s": round(now - last.at_monotonic, 3),
                "capacity": last.result.capacity,
            }
        checks[name] = entry
    vips = []
    for vip in engine.config.vips:
        decision = engine.decisions.get(vip.prefix)
        drain = engine.drained(vip)
        damp = engine.dampening.get(vip.prefix)
        vips.append(
            {
                "prefix": vip.prefix,
                "desired": (decision.verdict if decision else Verdict.UNDECIDED).value,
                "reason": decision.reason.value if decision else "waiting_for_checks",
                "acknowledged": ack_state(reconciler, vip.prefix),
                "since_s": round(wall - engine.changed_at[vip.prefix], 3)
                if vip.prefix in engine.changed_at
                else None,
                "checks": {name: engine.check_states[name].health.value for name in vip.checks},
                "require": vip.require,
                "drain": None
                if drain is None
                else {
                    "reason": drain.reason,
                    "source": drain.source,
                    "since": drain.since,
                    "phase": engine.phases.get(vip.prefix, DrainPhase.NONE).value,
                },
                "weight": engine.weights.get(vip.prefix),
                "dampening": {
                    "penalty": round(damp.penalty, 1) if damp else 0.0,
                    "suppressed": bool(damp and damp.suppressed),
                },
            }
        )
    return {
        "vips": vips,
        "checks": checks,
        "neighbors": dict(engine.neighbors),
        "exabgp": {"pending_commands": pending, "command_errors": reconciler.errors},
    }
