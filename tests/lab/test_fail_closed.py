"""Fail closed, seen from the router: a plugin that crashes withdraws before it goes, and a
reload that cannot be carried out changes nothing."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
import yaml

from announcer.lab.lab import Lab, LabError

from .conftest import ALL


def test_a_failing_plugin_task_withdraws_every_vip_then_comes_back(lab: Lab):
    """A task of lb1's plugin raises (the fault hook): lb1 leaves the router's FIB at once
    (the supervision path withdrew), and ExaBGP's respawned plugin brings it back."""
    (pid,) = lab.announcers.plugin_pids("lb1")
    os.kill(pid, signal.SIGUSR2)
    lab.fib.wait(["lb2", "lb3"], timeout=5)
    lab.fib.wait(ALL, timeout=20)
    assert lab.announcers.plugin_pids("lb1") != [pid]


def test_reload_to_a_check_that_cannot_be_built_changes_nothing(lab: Lab):
    """The reload is refused as a whole: lb1 stays in the FIB, and its running check still
    works (stopping nginx takes lb1 out)."""
    config_path = lab.dir("lb1") / "announcer.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["checks"]["web"]["http"] = {
        "url": "https://127.0.0.1/health",
        "ca_file": str(lab.dir("lb1") / "missing-ca.pem"),
    }
    before = lab.frr.updates_received("lb1")
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(LabError, match=re.escape("checks.web: cannot build the probe")):
        lab.announcers.cli("lb1", "reload")
    time.sleep(2)
    assert lab.frr.updates_received("lb1") == before
    assert set(lab.fib.next_hops()) == lab.fib.addresses(ALL)
    lab.services.stop("lb1")
    lab.fib.wait(["lb2", "lb3"])
