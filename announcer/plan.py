"""`announcer plan`: the exact ExaBGP commands per VIP for each state, touching nothing."""

from __future__ import annotations

from .config import Config
from .core import announce_command, withdraw_command
from .engine import route_for

__all__ = ["render_plan"]


def render_plan(config: Config) -> str:
    local_as = config.bgp.local_as if config.bgp else None
    out = []
    for vip in config.vips:
        require = vip.require if isinstance(vip.require, str) else f"at least {vip.require}"
        out.append(f"{vip.prefix}  (checks: {', '.join(vip.checks)}; require {require})")
        out.append(f"  healthy:  {announce_command(route_for(vip, local_as))}")
        out.append(f"  drained:  {withdraw_command(vip.prefix)}")
        out.append(f"  down:     {withdraw_command(vip.prefix)}")
        out.append("  starting: nothing until the checks give a verdict")
        out.append("")
    return "\n".join(out)
