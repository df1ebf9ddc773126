"""The package tests share one `make deb` and one way to make a bare Debian 12 root."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.debian_package import build_deb

ROOT = Path(__file__).resolve().parents[2]


def missing(*tools: str) -> str | None:
    if os.geteuid() != 0:
        return "root"
    return next((tool for tool in tools if shutil.which(tool) is None), None)


def require(*tools: str) -> None:
    """Skip without the tools, but never in CI: there they must be there."""
    lacking = missing(*tools)
    if lacking is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the package tests cannot run in CI: {lacking} missing")
        pytest.skip(f"the package tests need {lacking}")


def mirror() -> str:
    """The Debian mirror this machine's apt uses (so a bare root follows it)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return "http://deb.debian.org/debian"


def debootstrap(folder: Path) -> None:
    made = subprocess.run(
        ["debootstrap", "--variant=minbase", "bookworm", str(folder), mirror()],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]


@pytest.fixture(scope="session")
def deb() -> Path:
    require("dpkg-deb")
    return build_deb()
