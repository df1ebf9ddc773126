"""One lab host runs the Debian package's own files (make deb, unpacked with dpkg-deb): its
ExaBGP and its plugin come from the package's environment, not the checkout's, and meet the
same FRR routers as the others."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from announcer.lab.netns import netns_exec
from tests.debian_package import build_deb

from .conftest import ALL


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("package")
    subprocess.run(["dpkg-deb", "-x", str(build_deb()), str(root)], check=True)
    return root


@pytest.mark.timeout(600)
def test_a_host_running_the_packaged_plugin_serves_and_fails_over(lab_factory, unpacked):
    lab = lab_factory(packaged={"lb3": unpacked})
    lab.fib.wait(ALL, timeout=60)
    environment = str(unpacked / "opt" / "announcer")
    for pid in [*lab.announcers.plugin_pids("lb3"), lab.announcers.exabgp_pid("lb3") or 0]:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert command[0].startswith(environment), command
    version = netns_exec("lb3", f"{environment}/bin/python", "-m", "announcer", "--version")
    assert version.strip() == "announcer 0.1.0"
    lab.services.stop("lb3")
    lab.fib.wait(["lb1", "lb2"], timeout=10)
    lab.services.start("lb3")
    lab.fib.wait(ALL, timeout=15)
