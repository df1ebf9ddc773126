"""The status document served at /v1/status and printed by `announcer status`.

Built from the reducer's published snapshot and the reconciler's ledger: read only.
"""

from __future__ import annotations

import time
from typing import Any

from ..core import AddressGuard, State
from .fleet import fleet_views
from .metrics import ack_state
from .sources import AckSource, BfdSource

__all__ = ["status_document"]


def status_document(
    state: State, reconciler: AckSource, pending: int, bfd: BfdSource | None = None
) -> dict[str, Any]:
    now = time.monotonic()
    checks: dict[str, Any] = {}
    for name, record in state.checks.items():
        entry: dict[str, Any] = {
            "state": record.state.health.value,
            "effective": record.effective.value,
            "consecutive_successes": record.state.successes,
            "consecutive_failures": record.state.failures,
            "last_result": None,
        }
        if (last := record.last) is not None:
            entry["last_result"] = {
                "ok": last.ok,
                "reason": last.reason,
                "detail": last.detail,
                "duration_s": round(last.duration_s, 6),
                "age_s": round(now - last.at, 3),
                "capacity": last.capacity,
            }
        checks[name] = entry
    vips = []
    per_peer = {peer: ledger.acked for peer, ledger in reconciler.ledgers.items() if peer}
    for vip in state.spec.vips:
        vip_record = state.vips[vip.prefix]
        drain = state.drain_of(vip.prefix)
        vips.append(
            {
                "prefix": vip.prefix,
                "desired": vip_record.decision.verdict.value,
                "reason": vip_record.decision.reason.value,
                "acknowledged": ack_state(reconciler.acked, vip.prefix),
                # where BFD gates announcements: what each router was sent and acknowledged
                "routers": {peer: ack_state(acked, vip.prefix) for peer, acked in per_peer.items()}
                or None,
                "since_s": None
                if vip_record.changed_at is None
                else round(now - vip_record.changed_at, 3),
                "checks": {name: state.checks[name].effective.value for name in vip.checks},
                "require": vip.required,
                "drain": None
                if drain is None
                else {
                    "reason": drain.reason,
                    "source": drain.source,
                    "since": drain.since_wall,
                    "phase": vip_record.phase.value,
                },
                "weight": vip_record.weight,
                "address": {
                    "guard": vip.address.value,
                    "assigned": None
                    if vip.address is AddressGuard.IGNORE
                    else vip.on_host(state.addresses),
                },
                "dampening": {
                    "penalty": round(vip_record.dampening.penalty, 1),
                    "suppressed": vip_record.dampening.suppressed,
                },
            }
        )
    return {
        "vips": vips,
        "checks": checks,
        "neighbors": state.neighbor_states(),
        # routers that get nothing from this host now, and why
        "withheld": {peer: "bfd_down" for peer in sorted(state.withheld)},
        "bfd": None
        if bfd is None or not bfd.configured
        else {"bfdd_reachable": bfd.reachable, "via": bfd.via or None, "peers": dict(bfd.peers)},
        # with a fleet: per router and family, whether its paths are known, or why not
        "fleet": None if state.spec.fleet is None else fleet_views(state),
        "withdrawing": sorted(state.retired),
        "stalls": {"count": state.stalls, "last_s": round(state.last_stall_s, 3)},
        "exabgp": {"pending_commands": pending, "command_errors": reconciler.errors},
    }
