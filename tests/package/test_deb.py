"""The Debian package, installed the way an operator installs it: `make deb`'s package into a
bare Debian 12 root (debootstrap minbase), its dependencies resolved by apt; then the command,
the example configuration, the units, the man page and the completions; then remove and purge,
and nothing of it is left. Needs root, debootstrap and Debian's mirror (CI has them)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from announcer.lab.netns import ip

from .conftest import debootstrap, require

# building the package and a Debian root, and apt inside it: minutes, not the default minute
pytestmark = [pytest.mark.package, pytest.mark.timeout(1200)]
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "exabgp-announcer"
# what an operator has before installing it: python3 and systemd (its dependencies), and
# man-db and FRR (bfdd's unit names FRR's binary) for the checks below
PREREQUISITES = ["python3", "systemd", "man-db", "frr"]
# files apt, dpkg, man-db, systemd-analyze and systemd-sysusers write for themselves (caches,
# logs, the user database's backups): not the package's
NOT_THE_PACKAGE = (
    "/var/cache/",
    "/var/lib/apt/",
    "/var/lib/dpkg/",
    "/var/log/",
    "/tmp/",
    "/proc/",
    "/run/",  # volatile (systemd-analyze leaves a marker there)
    "/etc/passwd-",
    "/etc/group-",
    "/etc/shadow-",
    "/etc/gshadow-",
    "/etc/ld.so.cache",
)


@pytest.fixture(scope="module")
def bare_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require("debootstrap", "chroot")
    root = tmp_path_factory.mktemp("debian-root")
    debootstrap(root)
    shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
    # no daemon may start inside the root (policy-rc.d), and no /run/systemd: systemctl is not
    # run by the maintainer scripts there, as on a host being installed
    policy = root / "usr" / "sbin" / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    _in(root, "apt-get", "update", "-qq")
    _in(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *PREREQUISITES)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _in(root: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C.UTF-8",
        "HOME": "/root",
    }
    done = subprocess.run(
        ["chroot", str(root), *argv],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=900,
    )
    if check:
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    return done


def _files(root: Path) -> set[str]:
    found = set()
    for path in root.rglob("*"):
        name = "/" + str(path.relative_to(root))
        if not name.startswith(NOT_THE_PACKAGE) and not path.is_dir():
            found.add(name)
    return found


def test_installed_in_a_bare_debian_root_it_works_and_purge_leaves_nothing(deb, bare_root):
    root = bare_root
    before = _files(root)
    shutil.copy(deb, root / "tmp" / deb.name)
    _in(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", f"/tmp/{deb.name}")

    assert _in(root, "announcer", "--version").stdout.strip() == "announcer 0.1.0"
    # the example, with the API token it names (as an operator makes it)
    _in(
        root,
        "sh",
        "-c",
        "head -c 24 /dev/urandom | base64 > /etc/announcer/api-token && "
        "chgrp exabgp /etc/announcer/api-token && chmod 0640 /etc/announcer/api-token",
    )
    checked = _in(root, "announcer", "check", "-c", "/etc/announcer/announcer.yaml.example")
    assert "OK" in checked.stdout
    rendered = _in(
        root, "announcer", "exabgp-config", "-c", "/etc/announcer/announcer.yaml.example"
    ).stdout
    (root / "tmp" / "exabgp.conf").write_text(rendered)
    _in(root, "/opt/announcer/bin/exabgp", "validate", "/tmp/exabgp.conf")
    # the units are valid and their commands exist; nothing was enabled
    _in(
        root,
        "systemd-analyze",
        "verify",
        "/lib/systemd/system/exabgp-announcer.service",
        "/lib/systemd/system/announcer-bfdd.service",
    )
    assert not list((root / "etc" / "systemd" / "system").rglob("exabgp-announcer.service"))
    assert "exabgp:" in (root / "etc" / "passwd").read_text()
    state = root / "var" / "lib" / "announcer"
    assert state.is_dir() and state.stat().st_uid == _uid(root, "exabgp")
    assert _in(root, "man", "-w", "announcer").stdout.strip().endswith("announcer.1.gz")
    assert (root / "usr/share/bash-completion/completions/announcer").exists()
    assert (root / "usr/share/zsh/vendor-completions/_announcer").exists()

    _in(root, "rm", "/etc/announcer/api-token", "/tmp/exabgp.conf", f"/tmp/{deb.name}")
    _in(root, "apt-get", "remove", "-y", "-qq", PACKAGE)
    assert not (root / "opt" / "announcer" / "bin").exists()
    assert (root / "etc/announcer/announcer.yaml.example").exists()  # a conffile stays
    _in(root, "apt-get", "purge", "-y", "-qq", PACKAGE)
    left = _files(root) - before
    assert not left, sorted(left)[:20]
    for folder in ("etc/announcer", "etc/exabgp", "opt/announcer", "var/lib/announcer"):
        assert not (root / folder).exists(), folder


def _uid(root: Path, user: str) -> int:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        name, _, uid, *_ = line.split(":")
        if name == user:
            return int(uid)
    raise AssertionError(f"no user {user}")


# ------------------------------------------------------------------------- the Ansible role
ANSIBLE = ROOT / "deploy" / "ansible"
HOST_VARS = """
announcer_service: false
announcer_config:
  bgp:
    local_as: 65011
    router_id: 198.51.100.11
    neighbors:
      - {address: 198.51.100.1, peer_as: 65000}
  checks:
    web:
      http: {url: "http://127.0.0.1/health", expect_body: ok}
  vips:
    - {prefix: 192.0.2.10/32, checks: [web]}
  fleet: {min_serving: 1}
  stable_next_hops:
    interface: anc-vrrp0
    slots:
      - {address: 198.51.100.41, vrid: 41, priority: 200}
      - {address: 198.51.100.43, vrid: 43, priority: 100}
"""


def _playbook(root: Path, playbook: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return _in(
        root,
        "ansible-playbook",
        "-i",
        "/tmp/ansible/inventory.ini",
        f"/tmp/ansible/{playbook}",
        "-e",
        "@/tmp/ansible/host_vars.yml",
        *extra,
        check=False,
    )


def test_the_ansible_role_installs_configures_and_refuses_a_broken_configuration(deb, bare_root):
    """The role, run by ansible-playbook inside the bare root (local connection): it installs
    the package, writes announcer.yaml from the variables and exabgp.conf from it (and, with
    stable next hops, keepalived and keepalived.conf, checked by keepalived), changes
    nothing the second time, and refuses a configuration `announcer check` rejects, leaving
    the good one in place. The rolling playbook parses."""
    root = bare_root
    _in(root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "ansible-core")
    shutil.copytree(ANSIBLE, root / "tmp" / "ansible", dirs_exist_ok=True)
    (root / "tmp" / "ansible" / "inventory.ini").write_text(
        "[announcers]\n"
        "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"
    )
    (root / "tmp" / "ansible" / "host_vars.yml").write_text(HOST_VARS)
    shutil.copy(deb, root / "tmp" / deb.name)
    deb_var = f"announcer_deb=/tmp/{deb.name}"

    # keepalived checks that the slots' interface exists: a veth of the test's own (the root
    # shares this machine's network namespace; this kernel has no dummy links), removed
    # whatever happens
    ip("link", "add", "anc-vrrp0", "type", "veth", "peer", "name", "anc-vrrp1")
    try:
        first = _playbook(root, "site.yml", "-e", deb_var)
        assert first.returncode == 0, first.stdout[-3000:]
        _check_role_results(root, deb_var)
    finally:
        ip("link", "delete", "anc-vrrp0", check=False)


def _check_role_results(root: Path, deb_var: str) -> None:
    written = yaml.safe_load((root / "etc/announcer/announcer.yaml").read_text())
    assert written == yaml.safe_load(HOST_VARS)["announcer_config"]
    exabgp_conf = (root / "etc/exabgp/exabgp.conf").read_text()
    assert "neighbor 198.51.100.1 {" in exabgp_conf and "add-path send/receive;" in exabgp_conf
    # stable next hops: keepalived installed, its configuration rendered (and checked by it)
    keepalived_conf = (root / "etc/keepalived/keepalived.conf").read_text()
    assert keepalived_conf.count("vrrp_instance slot_") == 2

    again = _playbook(root, "site.yml", "-e", deb_var)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout[-2000:]

    broken = _playbook(
        root, "site.yml", "-e", deb_var, "-e", '{"announcer_config": {"vips": [{"prefix": "x"}]}}'
    )
    assert broken.returncode != 0
    assert "Write announcer.yaml" in broken.stdout and "failed=1" in broken.stdout
    assert yaml.safe_load((root / "etc/announcer/announcer.yaml").read_text()) == written

    syntax = _playbook(root, "rolling.yml", "--syntax-check")
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
