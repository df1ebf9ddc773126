"""`announcer plan`: the exact ExaBGP commands per VIP for each state, touching nothing.

The routes come from `core.build_route`, the function the running plugin's reducer uses, so
the plan cannot drift from what the plugin sends.
"""

from __future__ import annotations

from ..config import Config
from ..core import Reason, Threshold, announce_command, build_route, withdraw_command
from ..core.exabgp_commands import UnsafeToken
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
            healthy = announce_command(build_route(vip, Reason.HEALTHY, fleet=spec.fleet))
            draining = announce_command(build_route(vip, Reason.DRAINING, fleet=spec.fleet))
            panic = announce_command(build_route(vip, Reason.PANIC, fleet=spec.fleet))
            withdraw = withdraw_command(vip.prefix)
        except UnsafeToken as exc:  # validation should have refused it; never a traceback
            out.append(f"  cannot be rendered: {exc}")
            out.append("")
            continue
        out.append(f"  healthy:  {healthy}")
        out.append(f"  draining: {draining}")
        out.append(f"            (for drain.gshut_period, then:) {withdraw}")
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
        out.append("  starting: nothing until the checks give a verdict (at most their ttl)")
        out.append("")
    return "\n".join(out)


def _hosts(threshold: Threshold) -> str:
    if threshold.percent is not None:
        return f"{threshold} of the VIP's hosts (this one counted) other than this one"
    return f"{threshold} other host(s)"
