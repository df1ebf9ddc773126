"""Health probes for the announcer: one module per protocol, one interface, one runner.

This package never imports `announcer`: it can be used and tested on its own.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ._lean_http import ConnectionPools
from .base import Probe, ProbeFailure, ProbeResult, QuickProbe
from .exec_probe import ExecProbe, ExecProbeConfig
from .haproxy_probe import HaproxyProbe, HaproxyProbeConfig
from .http_probe import HttpProbe, HttpProbeConfig
from .nginx_probe import NginxProbe, NginxProbeConfig
from .reasons import Reason
from .runner import run_probe
from .tcp_probe import TcpProbe, TcpProbeConfig
from .watch import DOWN_RETRY_S, Endpoint, Watcher, endpoint_of

__all__ = [
    "DOWN_RETRY_S",
    "PROBE_TYPES",
    "ConnectionPools",
    "Endpoint",
    "ExecProbe",
    "ExecProbeConfig",
    "HaproxyProbe",
    "HaproxyProbeConfig",
    "HttpProbe",
    "HttpProbeConfig",
    "NginxProbe",
    "NginxProbeConfig",
    "Probe",
    "ProbeConfig",
    "ProbeFailure",
    "ProbeResult",
    "QuickProbe",
    "Reason",
    "TcpProbe",
    "TcpProbeConfig",
    "Watcher",
    "build_probe",
    "endpoint_of",
    "run_probe",
]

ProbeConfig = Annotated[
    HttpProbeConfig | TcpProbeConfig | ExecProbeConfig | HaproxyProbeConfig | NginxProbeConfig,
    Field(discriminator="type"),
]

PROBE_TYPES: dict[str, type[ProbeConfig]] = {
    "http": HttpProbeConfig,
    "tcp": TcpProbeConfig,
    "exec": ExecProbeConfig,
    "haproxy": HaproxyProbeConfig,
    "nginx": NginxProbeConfig,
}


def build_probe(config: ProbeConfig, pools: ConnectionPools | None = None) -> Probe:
    """Make the probe object for one probe config (HTTP probes of a plain-HTTP endpoint share
    `pools`' connections to it, if given)."""
    match config:
        case HttpProbeConfig():
            return HttpProbe(config, pools)
        case TcpProbeConfig():
            return TcpProbe(config)
        case ExecProbeConfig():
            return ExecProbe(config)
        case HaproxyProbeConfig():
            return HaproxyProbe(config)
        case NginxProbeConfig():
            return NginxProbe(config)
    raise TypeError(f"unknown probe config {config!r}")
