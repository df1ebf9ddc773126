"""How strongly each probe reason speaks: the core's classification of the probes' one
vocabulary (`healthchecks.reasons.Reason`; kept apart so the core imports no probe code).
Every reason is in exactly one class; a test holds this table and the vocabulary together, so
a reason a probe gains is never silently weak."""

from __future__ import annotations

__all__ = ["DEFINITE_REASONS", "NOTHING_LISTENS", "WEAK_REASONS"]

# the service (or its host) answered, and the answer was no: the same answer comes again
DEFINITE_REASONS = frozenset(
    {
        "connection_refused",
        "socket_missing",
        "permission_denied",
        "bad_status",
        "body_mismatch",
        "frontend_closed",
        "frontend_missing",
        "backend_missing",
        "below_min_up",
        "exit_nonzero",
        "exec_not_found",
    }
)
# ...of which these say that nothing listens (certain, with the watcher's word)
NOTHING_LISTENS = frozenset({"connection_refused", "socket_missing"})
# the probe could not tell: a slow, overloaded or restarting service looks like this a moment
WEAK_REASONS = frozenset(
    {
        "timeout",
        "connection_reset",
        "tls_error",
        "http_error",
        "bad_reply",
        "host_unreachable",
        "network_unreachable",
        "os_error",
        "probe_error",
        "killed",
    }
)
