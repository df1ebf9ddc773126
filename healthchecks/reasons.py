"""Every reason a probe result can give: one vocabulary for the probes, the metrics' `reason`
label and the decision core (which classifies each one: `announcer/core/reasons.py`; a test
holds the two together). A StrEnum, so a reason is still the plain token everywhere."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason"]


class Reason(StrEnum):
    OK = "ok"
    # no answer, or no usable one
    TIMEOUT = "timeout"
    CONNECTION_RESET = "connection_reset"
    TLS_ERROR = "tls_error"
    HTTP_ERROR = "http_error"  # a response that is not HTTP, or cut short
    BAD_REPLY = "bad_reply"  # a stats socket's answer that cannot be read
    HOST_UNREACHABLE = "host_unreachable"
    NETWORK_UNREACHABLE = "network_unreachable"
    OS_ERROR = "os_error"
    PROBE_ERROR = "probe_error"  # the probe itself failed (a bug, or it cannot be built)
    KILLED = "killed"  # an exec check ended by a signal
    # the service answered, and the answer was no
    CONNECTION_REFUSED = "connection_refused"
    SOCKET_MISSING = "socket_missing"
    PERMISSION_DENIED = "permission_denied"
    BAD_STATUS = "bad_status"
    BODY_MISMATCH = "body_mismatch"
    FRONTEND_CLOSED = "frontend_closed"
    FRONTEND_MISSING = "frontend_missing"
    BACKEND_MISSING = "backend_missing"
    BELOW_MIN_UP = "below_min_up"
    EXIT_NONZERO = "exit_nonzero"
    EXEC_NOT_FOUND = "exec_not_found"
