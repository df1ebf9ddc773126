"""The containerised lab for real: images built here from a base made with debootstrap (no
registry), the LB hosts running the Debian package, the topology of deploy/lab/compose.yaml
brought up with podman (announcer.lab.containers); r1's FIB holds every host, and a host whose
nginx stops leaves it. Needs root, debootstrap, podman with runc and Debian's mirror."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from announcer.lab.containers import PODMAN, commands_down, commands_up, load
from announcer.lab.topology import VIP_V4, lb_hosts

from .conftest import ROOT, debootstrap, require

pytestmark = [pytest.mark.package, pytest.mark.timeout(1200)]
COMPOSE = ROOT / "deploy" / "lab" / "compose.yaml"
BASE = "localhost/announcer-lab-base:bookworm"


@pytest.fixture(scope="module")
def base_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require("debootstrap", "podman", "runc")
    root = tmp_path_factory.mktemp("base")
    debootstrap(root)
    with subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE) as tar:
        subprocess.run(
            [*PODMAN, "import", "-", BASE], stdin=tar.stdout, check=True, capture_output=True
        )
    assert tar.returncode == 0
    yield BASE
    subprocess.run([*PODMAN, "rmi", "-f", BASE], check=False, capture_output=True)


def _next_hops(project: str, router: str) -> set[str]:
    out = subprocess.run(
        [*PODMAN, "exec", f"{project}_{router}", "ip", "-j", "route", "show", VIP_V4],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    routes = json.loads(out or "[]")
    return {hop["gateway"] for route in routes for hop in route.get("nexthops", [route])}


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.5)


def test_the_compose_topology_runs_in_podman_with_the_package(deb, base_image):
    compose = load(COMPOSE, base_image)
    project = compose["name"]
    try:
        for command in commands_up(compose, COMPOSE.parent):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            assert done.returncode == 0, (command, done.stderr[-2000:])
        hosts = {h.v4 for h in lb_hosts(3)}
        _wait(lambda: _next_hops(project, "r1") == hosts, 90, "every host in r1's FIB")
        _wait(lambda: _next_hops(project, "r2") == hosts, 30, "every host in r2's FIB")
        stop = ["nginx", "-s", "stop", "-c", "/run/lab/lb1/nginx.conf"]
        subprocess.run([*PODMAN, "exec", f"{project}_lb1", *stop], check=True)
        others = hosts - {lb_hosts(3)[0].v4}
        _wait(lambda: _next_hops(project, "r1") == others, 10, "lb1 out of r1's FIB")
    finally:
        for command in commands_down(compose, images=True):
            subprocess.run(command, check=False, capture_output=True)
    left = subprocess.run(
        [*PODMAN, "ps", "-a", "--format", "{{.Names}}"], capture_output=True, text=True, check=True
    ).stdout
    assert project not in left
