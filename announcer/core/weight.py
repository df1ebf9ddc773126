"""Weighted ECMP: the link-bandwidth extended community, from a fixed or a live capacity.

Live capacity (HAProxy's UP servers / servers) is quantised to `steps` levels with hysteresis,
so a server flapping at the edge of a level does not send an update each time.
"""

from __future__ import annotations

__all__ = ["BYTES_PER_MBPS", "bandwidth_community", "quantise"]

BYTES_PER_MBPS = 125_000  # the community carries bytes per second


def quantise(current: float | None, capacity: float, steps: int, hysteresis: float = 0.25) -> float:
    """The capacity level (a multiple of 1/steps, never 0) to advertise.

    Moves only when `capacity` is more than half a step plus `hysteresis` of a step away from
    the level advertised now.
    """
    step = 1.0 / steps
    capacity = min(max(capacity, 0.0), 1.0)
    candidate = max(step, round(capacity / step) * step)
    if current is None:
        return candidate
    if abs(capacity - current) > step * (0.5 + hysteresis):
        return candidate
    return current


def bandwidth_community(asn: int, mbps: float, level: float = 1.0) -> str:
    """`bandwidth:ASN:BYTES_PER_SECOND` for ExaBGP (ASN must fit in 16 bits)."""
    if not 0 < asn <= 65535:
        raise ValueError(f"link bandwidth needs a 16-bit ASN, not {asn}")
    return f"bandwidth:{asn}:{max(1, round(mbps * level * BYTES_PER_MBPS))}"
