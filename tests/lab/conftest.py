"""Lab tests need root, FRR, nginx, HAProxy and ExaBGP. In CI (CI=true) a missing piece is a
failure, never a skip, so the lab tests cannot pass by not running."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from announcer.lab.lab import Lab

pytestmark = pytest.mark.lab


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    for tool in ("nginx", "haproxy", "vtysh", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} missing"
    if not Path("/usr/lib/frr/bgpd").exists():
        return "FRR missing"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab" in str(item.fspath):
            item.add_marker(pytest.mark.lab)
            # a lab test builds and tears down namespaces and daemons: a longer limit, still one
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(240))


@pytest.fixture
def lab_factory() -> Iterator[Callable[..., Lab]]:
    reason = _missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"lab tests cannot run in CI: {reason}")
        pytest.skip(f"lab needs {reason}")
    labs: list[Lab] = []

    def make(**kwargs) -> Lab:
        # not under pytest's tmp_path: that is private to root, and FRR runs as user frr
        lab = Lab(Path(tempfile.mkdtemp(prefix="announcer-lab-test-")), **kwargs)
        labs.append(lab)
        lab.up()
        return lab

    yield make
    for lab in labs:
        lab.down()
        shutil.rmtree(lab.workdir, ignore_errors=True)


@pytest.fixture
def lab(lab_factory) -> Lab:
    lab = lab_factory()
    lab.fib.wait(ALL)
    lab.fib.wait(ALL, VIP6)
    return lab


ALL = ["lb1", "lb2", "lb3"]
VIP6 = "2001:db8:100::10/128"


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.05
) -> None:
    """Until `predicate()` is true; fails the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)
