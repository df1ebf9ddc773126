"""Health probes for the announcer: one module per protocol, one interface, one runner.

This package never imports `announcer`: it can be used and tested on its own.

The probe configurations (pydantic models) are imported at once; the probes, the runner and
the HTTP client (asyncio, sockets, TLS) only when first used: reading a configuration
(`announcer check`) does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Probe, ProbeFailure, ProbeResult, QuickProbe
from .configs import (
    PROBE_TYPES,
    ExecProbeConfig,
    HaproxyProbeConfig,
    HttpProbeConfig,
    NginxProbeConfig,
    ProbeConfig,
    TcpProbeConfig,
)
from .reasons import Reason

if TYPE_CHECKING:
    from ._lean_http import ConnectionPools
    from .exec_probe import ExecProbe
    from .haproxy_probe import HaproxyProbe
    from .http_probe import HttpProbe
    from .nginx_probe import NginxProbe
    from .runner import run_probe
    from .tcp_probe import TcpProbe
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

# name -> the module that defines it, imported on first use
_LAZY = {
    "ConnectionPools": "._lean_http",
    "ExecProbe": ".exec_probe",
    "HaproxyProbe": ".haproxy_probe",
    "HttpProbe": ".http_probe",
    "NginxProbe": ".nginx_probe",
    "run_probe": ".runner",
    "TcpProbe": ".tcp_probe",
    "DOWN_RETRY_S": ".watch",
    "Endpoint": ".watch",
    "Watcher": ".watch",
    "endpoint_of": ".watch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def build_probe(config: ProbeConfig, pools: ConnectionPools | None = None) -> Probe:
    """Make the probe object for one probe config (HTTP probes of a plain-HTTP endpoint share
    `pools`' connections to it, if given)."""
    match config:
        case HttpProbeConfig():
            from .http_probe import HttpProbe

            return HttpProbe(config, pools)
        case TcpProbeConfig():
            from .tcp_probe import TcpProbe

            return TcpProbe(config)
        case ExecProbeConfig():
            from .exec_probe import ExecProbe

            return ExecProbe(config)
        case HaproxyProbeConfig():
            from .haproxy_probe import HaproxyProbe

            return HaproxyProbe(config)
        case NginxProbeConfig():
            from .nginx_probe import NginxProbe

            return NginxProbe(config)
    raise TypeError(f"unknown probe config {config!r}")
