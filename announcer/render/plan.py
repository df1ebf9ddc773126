"""`announcer plan`: the exact ExaBGP commands per VIP for each state, touching nothing.

The routes come from `core.build_route`, the function the running plugin's reducer uses, so
the plan cannot drift from what the plugin sends.
"""

from __future__ import annotations

from ..config import Config
from ..core import Reason, Threshold, build_route
from ..core.exabgp_commands import UnsafeToken, announce_commands, withdraw_commands
from ..specs import spec_from_config

__all__ = ["render_plan"]


def render_plan(config: Config) -> str:
    out = []
    spec = spec_from_config(config)
    for vip, vip_config in zip(spec.vips, config.vips, strict=True):
        require = vip_config.require
        required = require if isinstance(require, str) else f"at least {require}"
        out.append(f"{vip.prefix}  (checks: {', '.join(vip.checks)}; require {required})")
        try:
            healthy = _lines(announce_commands(build_route(vip, Reason.HEALTHY, fleet=spec.fleet)))
            draining = _lines(
                announce_commands(build_route(vip, Reason.DRAINING, fleet=spec.fleet))
            )
            panic = _lines(announce_commands(build_route(vip, Reason.PANIC, fleet=spec.fleet)))
            withdraw = _lines(withdraw_commands(vip.prefix, spec.path_ids.get(vip.prefix, ())))
        except UnsafeToken as exc:  # validation should have refused it; never a traceback
            out.append(f"  cannot be rendered: {exc}")
            out.append("")
            continue
        out.append(f"  healthy:  {healthy}")
        out.append(f"  draining: {draining}")
        out.append("            (for drain.gshut_period, then:)")
        out.append(f"            {withdraw}")
        out.append(f"  drained:  {withdraw}")
        out.append(f"  down:     {withdraw}")
        if vip.fleet.min_serving is not None:
            out.append(
                f"  panic:    {panic}  (checks failing softly while fewer than "
                f"{_hosts(vip.fleet.min_serving)} serve it)"
            )
        if vip.fleet.drain_min_serving is not None:
            out.append(
                f"  drains:   refused while fewer than {_hosts(vip.fleet.drain_min_serving)} "
                "would serve it (unless forced)"
            )
        if vip.weight is not None and vip.weight.from_check is not None:
            out.append(
                f"  weight:   link bandwidth scales with {vip.weight.from_check}'s capacity "
                f"in {vip.weight.steps} steps (shown at full capacity)"
            )
        if vip.route.paths:
            out.append(
                "  slots:    one path per slot this host backs (stable_next_hops); keepalived "
                "moves a slot to this host only while it serves every VIP through the slots"
            )
        out.append("  starting: nothing until the checks give a verdict (at most their ttl)")
        out.append("")
    return "\n".join(out)


def _lines(commands: list[str]) -> str:
    """Several commands (one per path) one under the other, aligned after the label."""
    return ("\n" + " " * 12).join(commands)


def _hosts(threshold: Threshold) -> str:
    if threshold.percent is not None:
        return f"{threshold} of the VIP's hosts (this one counted) other than this one"
    return f"{threshold} other host(s)"
