"""One reason vocabulary: every reason a probe can give is a `Reason`, and the core classifies
every `Reason` as definite or weak, exactly once."""

from __future__ import annotations

import ast
from pathlib import Path

from announcer.core.hysteresis import Evidence, evidence_of
from announcer.core.reasons import DEFINITE_REASONS, NOTHING_LISTENS, WEAK_REASONS
from healthchecks import Reason

ROOT = Path(__file__).resolve().parents[2]


def test_every_reason_is_classified_exactly_once():
    failures = {reason.value for reason in Reason} - {Reason.OK}
    assert failures == DEFINITE_REASONS | WEAK_REASONS
    assert not DEFINITE_REASONS & WEAK_REASONS
    assert NOTHING_LISTENS <= DEFINITE_REASONS
    for reason in Reason:
        if reason is not Reason.OK:
            expected = Evidence.DEFINITE if reason in DEFINITE_REASONS else Evidence.WEAK
            assert evidence_of(False, reason) is expected, reason


def _bare_reasons(path: Path) -> list[str]:
    """String literals given as a probe's reason: ProbeFailure("x"), reason="x", _failed("x")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        if name in ("ProbeFailure", "_failed") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append(f"{path.name}: {first.value}")
        for keyword in node.keywords:
            value = keyword.value
            literal = isinstance(value, ast.Constant) and isinstance(value.value, str)
            if keyword.arg == "reason" and literal:
                found.append(f"{path.name}: {value.value}")  # type: ignore[attr-defined]
    return found


def test_probes_give_reasons_only_from_the_vocabulary():
    paths = [*(ROOT / "healthchecks").glob("*.py"), *(ROOT / "announcer" / "probing").glob("*.py")]
    bare = [hit for path in paths for hit in _bare_reasons(path)]
    assert not bare, bare
