"""`make deb` for the tests that need the package (tests/package, the lab's packaged host)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_deb() -> Path:
    """Build dist/exabgp-announcer_*.deb from this checkout; its path."""
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-deb.sh")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    return ROOT / built.stdout.strip().splitlines()[-1]
